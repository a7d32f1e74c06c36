// Child-process runner for CLI tests.
#include "support/cli.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace qkv::testing {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

cli_result run_qkv(const std::vector<std::string>& args, const environment& env,
                   unsigned timeout_seconds) {
  const std::string exe = QKV_CLI;
  if (exe.empty()) throw std::runtime_error("the qkv command was not built (QKV_BUILD_TOOLS=OFF)");
  return run_program(exe, args, env, timeout_seconds);
}

cli_result run_program(const std::string& exe, const std::vector<std::string>& args,
                       const environment& env, unsigned timeout_seconds) {
  temp_dir io;
  const std::string out_path = io.file("stdout"), err_path = io.file("stderr");
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
    if (timeout_seconds > 0) alarm(timeout_seconds);  // a pending alarm survives execv
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  cli_result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

void expect_refused(std::vector<std::string> args, const std::string& flag,
                    const std::string& value, const std::vector<std::string>& needles,
                    const std::vector<std::string>& outputs) {
  const auto it = std::find(args.begin(), args.end(), flag);
  if (it == args.end())
    args.insert(args.end(), {flag, value});
  else
    *(it + 1) = value;
  const cli_result r = run_qkv(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  for (const auto& n : needles)
    EXPECT_NE(r.err.find(n), std::string::npos) << "stderr: " << r.err << "\nmissing: " << n;
  for (const auto& path : outputs) EXPECT_FALSE(file_exists(path)) << path;
}

temp_dir::temp_dir() {
  std::string templ = (std::filesystem::temp_directory_path() / "qkv-test-XXXXXX").string();
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

temp_dir::~temp_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

bool file_exists(const std::string& path) {
  return std::filesystem::exists(path);
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  return names;
}

}  // namespace qkv::testing
