// Writing several output files as one: each goes through a temporary file renamed into place,
// and if any write fails, the ones already written by this command are removed again.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace qkv::cli {

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
