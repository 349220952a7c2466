#include "common/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace foundry {

namespace {

std::string errno_text() { return std::strerror(errno); }

// subtle: closing a stream only hands the bytes to the kernel. Without fsync, a power cut just
// after the rename can leave `path` naming an empty or partial file on some file systems, which
// is exactly what the rename was meant to prevent. Any descriptor of the file can flush it.
void sync_to_disk(const std::string& tmp) {
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(tmp + ": cannot reopen to flush it to disk: " + errno_text());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw std::runtime_error(tmp + ": fsync failed: " + errno_text());
}

// The rename is a change to the directory, which has its own entry on the disk: fsync of the
// directory makes the new name survive a power cut. Some file systems refuse to fsync a
// directory (EINVAL); the file's own bytes are safe by then, so that is not an error.
void sync_directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // e.g. a directory we may write into but not read: nothing more to do
  int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL && err != EROFS) {
    throw std::runtime_error(path + ": fsync of its directory " + dir + " failed: " + std::strerror(err));
  }
}

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  // subtle: a path that exists and is not a regular file (/dev/null, a named pipe) is written in
  // place. Renaming onto it would replace the device itself with a file (as root, /dev/null).
  struct stat info;
  if (::stat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode) && !S_ISDIR(info.st_mode)) {
    std::ofstream out(path, std::ios::binary);
    if (!out) throw std::runtime_error(path + ": cannot open for writing: " + errno_text());
    write(out);
    out.flush();
    if (!out) throw std::runtime_error(path + ": writing failed");
    return;
  }
  const std::string tmp = path + ".tmp";
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw std::runtime_error(path + ": cannot create " + tmp + ": " + errno_text());
      write(out);
      out.flush();
      if (!out) throw std::runtime_error(path + ": writing " + tmp + " failed (disk full?)");
      out.close();
      if (out.fail()) throw std::runtime_error(path + ": closing " + tmp + " failed (disk full?)");
    }
    sync_to_disk(tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      throw std::runtime_error(path + ": cannot rename " + tmp + " onto it: " + errno_text());
    }
  } catch (...) {
    std::remove(tmp.c_str());  // leave no half-written temporary behind; `path` is untouched
    throw;
  }
  sync_directory_of(path);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path,
                    [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

std::string read_file(const std::string& path, const std::string& what) {
  const std::string expected = what.empty() ? "a file" : "the " + what;
  struct stat info;
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    throw std::runtime_error(path + ": is a directory, expected " + expected);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error(path + ": cannot open " + (what.empty() ? "" : "the " + what + " ") +
                             "(missing or unreadable)");
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": reading failed: " + errno_text());
  return bytes.str();
}

}  // namespace foundry
