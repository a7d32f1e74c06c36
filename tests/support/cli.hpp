// Running the built qkv command in tests: its exit code, stdout and stderr, and its refusals.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace qkv::testing {

struct cli_result {
  int exit_code = -1;
  std::string out, err;
};

// Environment variables set for the child, on top of the test's own environment.
using environment = std::vector<std::pair<std::string, std::string>>;

// Runs the qkv executable (QKV_CLI) with `args`, no shell involved; waits for it. A non-zero
// `timeout_seconds` ends the child with SIGALRM (exit code 128 + 14) if it runs longer: for
// inputs that could make it hang.
cli_result run_qkv(const std::vector<std::string>& args, const environment& env = {},
                   unsigned timeout_seconds = 0);
// Runs the program at path `exe` (e.g. mpirun) likewise.
cli_result run_program(const std::string& exe, const std::vector<std::string>& args,
                       const environment& env = {}, unsigned timeout_seconds = 0);
// Runs qkv with `args` after setting `flag` to `value` (its value replaced, or the pair appended
// when absent) and expects a refusal: exit code 2, every needle in stderr, none of `outputs`.
void expect_refused(std::vector<std::string> args, const std::string& flag,
                    const std::string& value, const std::vector<std::string>& needles,
                    const std::vector<std::string>& outputs);

// A fresh empty directory under the system temp dir, removed by the destructor.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

bool file_exists(const std::string& path);
// The whole content of a file ("" when it cannot be read).
std::string read_text(const std::string& path);
// Names of the files in `dir` (for "no partial output" checks).
std::vector<std::string> list_dir(const std::string& dir);

}  // namespace qkv::testing
