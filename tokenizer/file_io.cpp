#include "tokenizer/file_io.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace foundry {

void write_file_atomically(const std::string& path, const std::string& content) {
  struct stat info;
  const bool special = ::stat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode) && !S_ISDIR(info.st_mode);
  const std::string target = special ? path : path + ".tmp";
  {
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(path + ": cannot open " + target + " for writing (does the folder exist?)");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) {
      if (!special) std::remove(target.c_str());
      throw std::runtime_error(path + ": writing " + target + " failed (disk full?)");
    }
  }
  if (!special && std::rename(target.c_str(), path.c_str()) != 0) {
    std::remove(target.c_str());
    throw std::runtime_error(path + ": cannot rename " + target + " onto it");
  }
}

}  // namespace foundry
