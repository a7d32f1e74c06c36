#include "support/doc_example.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "support/cli.hpp"

namespace qkv::testing {

int expect_doc_output(const std::string& doc, const std::string& command,
                      const std::string& output) {
  const std::string text = read_text(std::string(QKV_TEST_DATA) + "/../../docs/" + doc);
  const size_t at = text.find(command + "\n");
  if (at == std::string::npos) {
    ADD_FAILURE() << "docs/" << doc << " has no line " << command;
    return 0;
  }
  const size_t first = at + command.size() + 1, last = text.find("```", first);
  std::istringstream lines(text.substr(first, last - first));
  int checked = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line == "...") continue;
    EXPECT_NE(output.find(line + "\n"), std::string::npos) << "docs/" << doc << " quotes\n"
                                                           << line << "\nnot in\n"
                                                           << output;
    ++checked;
  }
  return checked;
}

}  // namespace qkv::testing
