// Writing a command's output files as one. Every output is first written to a temporary file
// beside its target; only when all are written are they renamed into place. So a failure leaves
// no new file behind and never touches a file that existed before the run.
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
// resolve to the same file (symbolic links, "./", hard links included), an output that is a
// directory or another non-regular file (a device, a FIFO), and an output whose folder does not
// exist.
void check_output_paths(const std::vector<output_path>& outputs);

class output_files {
 public:
  using writer = std::function<void(const std::string& path)>;
  // Queues `write` for the output of `flag` at `path` (skipped when path is empty). `write` is
  // given the temporary path to write.
  void add(const std::string& flag, const std::string& path, writer write);
  // Checks the paths (check_output_paths), runs every queued write to its temporary file, then
  // renames them all into place. On a failure removes the temporaries and throws qkv::error
  // naming the flag.
  void commit();

 private:
  struct pending {
    output_path out;
    writer write;
  };
  std::vector<pending> writes_;
};

}  // namespace qkv::cli
