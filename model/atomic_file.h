// Atomic file writes: readers (and a crash, or Ctrl-C halfway) see either the old file or the
// whole new one, never half of it.
//
// The recipe is the usual one: write everything to `path.tmp` in the same directory, flush it to
// the disk, then std::rename it over `path`. On POSIX file systems a rename within one directory
// replaces the target in one step. Every file users make (models, checkpoints, tokenizers,
// outputs) goes through here.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace foundry {

// Writes `bytes` to `path` atomically. Throws std::runtime_error naming the path when the
// directory is missing or not writable, the disk is full, or the rename fails; the temporary
// file is removed in that case and the old `path` (if any) is left untouched.
void write_file_atomic(const std::string& path, const std::string& bytes);

// The streaming form, for files too large to build in memory first: `write` receives a binary
// output stream onto `path.tmp`. An exception thrown by `write` removes the temporary file and
// propagates; `path` is only replaced when `write` returns and every byte reached the disk.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace foundry
