// All-or-nothing writing of a command's output files.
#include "output_files.hpp"

#include <cstdio>

namespace qkv::cli {

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
