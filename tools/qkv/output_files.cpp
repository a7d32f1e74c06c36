// All-or-nothing writing of a command's output files.
#include "output_files.hpp"

#include <cstdio>
#include <filesystem>

#include "qkv/error.hpp"

namespace qkv::cli {

void check_output_paths(const std::vector<output_path>& outputs) {
  namespace fs = std::filesystem;
  std::vector<std::pair<const output_path*, fs::path>> seen;
  for (const output_path& o : outputs) {
    if (o.path.empty()) continue;
    std::error_code ec;
    if (fs::is_directory(o.path, ec))
      throw error(o.flag + ": '" + o.path + "' is a directory; give a file path");
    const fs::path folder = fs::path(o.path).parent_path();
    if (!folder.empty() && !fs::is_directory(folder, ec))
      throw error(o.flag + ": cannot write '" + o.path + "': folder '" + folder.string() +
                  "' does not exist");
    const fs::path resolved = fs::weakly_canonical(fs::absolute(o.path, ec), ec);
    for (const auto& [other, other_path] : seen)
      if (resolved == other_path)
        throw error(o.flag + ": '" + o.path + "' is the same file as " + other->flag + " '" +
                    other->path + "'; each output needs its own path");
    seen.emplace_back(&o, resolved);
  }
}

void output_files::add(const std::string& path, std::function<void(const std::string&)> write) {
  if (!path.empty()) writes_.emplace_back(path, std::move(write));
}

void output_files::commit() {
  size_t done = 0;
  try {
    for (; done < writes_.size(); ++done) writes_[done].second(writes_[done].first);
  } catch (...) {
    for (size_t i = 0; i < done; ++i) std::remove(writes_[i].first.c_str());
    throw;
  }
}

}  // namespace qkv::cli
