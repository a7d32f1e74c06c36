// Docs that quote a command's output: the quoted lines checked against a real run.
#pragma once

#include <string>

namespace qkv::testing {

// The fenced block of docs/`doc` that holds the line `command` (e.g. "$ qkv explain ..."): every
// line after it up to the fence's end, except "...", must end a line of `output`. Returns
// how many lines were checked (0, with a gtest failure, when the doc has no such line).
int expect_doc_output(const std::string& doc, const std::string& command,
                      const std::string& output);

}  // namespace qkv::testing
