// Writing tokenizer files safely. (The tokenizer stands alone, so it keeps this small twin of
// model/atomic_file.h instead of depending on model/.)
#pragma once

#include <string>

namespace foundry {

// Writes `content` to `path.tmp`, then renames it onto `path`: an interrupted write never
// leaves a half-written file under the real name. A `path` that exists and is not a regular
// file (/dev/null, a pipe) is written in place instead: renaming onto it would replace it.
void write_file_atomically(const std::string& path, const std::string& content);

}  // namespace foundry
