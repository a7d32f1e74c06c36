// Writing several output files as one: each goes through a temporary file renamed into place,
// and if any write fails, the ones already written by this command are removed again.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace qkv::cli {

// An output flag and the path it was given ("" = not asked for).
struct output_path {
  std::string flag, path;
};

// Refuses (qkv::error naming the flag, exit code 2) before any work is done: two outputs that
// resolve to the same file, an output that is a directory, and an output whose folder does not
// exist.
void check_output_paths(const std::vector<output_path>& outputs);

class output_files {
 public:
  // Queues a write of `path` (skipped when path is empty).
  void add(const std::string& path, std::function<void(const std::string&)> write);
  // Runs every queued write; on a failure removes what was written and rethrows.
  void commit();

 private:
  std::vector<std::pair<std::string, std::function<void(const std::string&)>>> writes_;
};

}  // namespace qkv::cli
