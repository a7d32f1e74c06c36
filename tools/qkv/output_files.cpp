// All-or-nothing writing of a command's output files.
#include "output_files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "qkv/error.hpp"

namespace qkv::cli {
namespace {

namespace fs = std::filesystem;

// The path with symbolic links and "." / ".." resolved as far as it exists.
std::string resolved(const std::string& path) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? path : p.string();
}

std::string folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

// The temporary file beside `path` that its write goes to first.
std::string make_temporary(const output_path& o) {
  std::string tmp = o.path + ".tmp.XXXXXX";
  const int fd = mkstemp(tmp.data());
  if (fd < 0) throw error(o.flag + ": cannot write '" + o.path + "': " + std::strerror(errno));
  ::close(fd);
  return tmp;
}

}  // namespace

void check_output_paths(const std::vector<output_path>& outputs) {
  struct seen {
    const output_path* out;
    std::string resolved;
    struct stat st;
    bool exists;
  };
  std::vector<seen> checked;
  for (const output_path& o : outputs) {
    if (o.path.empty()) continue;
    seen s{&o, resolved(o.path), {}, false};
    s.exists = ::stat(o.path.c_str(), &s.st) == 0;
    if (s.exists && S_ISDIR(s.st.st_mode))
      throw error(o.flag + ": '" + o.path + "' is a directory; give a file path");
    if (s.exists && !S_ISREG(s.st.st_mode))
      throw error(o.flag + ": '" + o.path +
                  "' exists and is not a regular file (a device, FIFO or socket); qkv replaces "
                  "only regular files");
    struct stat folder;
    const std::string dir = folder_of(o.path);
    if (::stat(dir.c_str(), &folder) != 0 || !S_ISDIR(folder.st_mode))
      throw error(o.flag + ": cannot write '" + o.path + "': folder '" + dir + "' does not exist");
    for (const seen& other : checked) {
      const bool same_inode = s.exists && other.exists && s.st.st_dev == other.st.st_dev &&
                              s.st.st_ino == other.st.st_ino;
      if (same_inode || s.resolved == other.resolved)
        throw error(o.flag + ": '" + o.path + "' is the same file as " + other.out->flag + " '" +
                    other.out->path + "'; each output needs its own path");
    }
    checked.push_back(s);
  }
}

void output_files::add(const std::string& flag, const std::string& path, writer write) {
  if (!path.empty()) writes_.push_back({{flag, path}, std::move(write)});
}

void output_files::commit() {
  std::vector<output_path> paths;
  for (const pending& w : writes_) paths.push_back(w.out);
  check_output_paths(paths);
  std::vector<std::string> temporaries;
  const auto remove_temporaries = [&] {
    for (const std::string& t : temporaries) std::remove(t.c_str());
  };
  try {
    for (const pending& w : writes_) {
      temporaries.push_back(make_temporary(w.out));
      try {
        w.write(temporaries.back());
      } catch (const error& e) {
        throw error(w.out.flag + ": " + e.what());
      }
    }
  } catch (...) {
    remove_temporaries();
    throw;
  }
  // Every output is complete: now each replaces its target (rename is atomic within a folder).
  for (size_t i = 0; i < writes_.size(); ++i)
    if (std::rename(temporaries[i].c_str(), writes_[i].out.path.c_str()) != 0) {
      const int saved = errno;
      remove_temporaries();
      throw error(writes_[i].out.flag + ": cannot write '" + writes_[i].out.path +
                  "' (rename): " + std::strerror(saved));
    }
}

}  // namespace qkv::cli
