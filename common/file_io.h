// Files, whole: read one into memory, write one atomically. Every library and tool of the
// project reads and writes its files through here (it depends on nothing but the C++ standard
// library and POSIX, so each of them may use it).
//
// Atomic writes: readers, a crash or a Ctrl-C halfway see either the old file or the whole new
// one, never half of it. The recipe is the usual one: write everything to `path.tmp` in the same
// directory, fsync it, std::rename it over `path` (on POSIX file systems a rename within one
// directory replaces the target in one step), then fsync the directory so that the rename itself
// is on the disk.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace foundry {

// Writes `bytes` to `path` atomically. Throws std::runtime_error naming the path when the
// directory is missing or not writable, the disk is full, or the rename fails; the temporary
// file is removed in that case and the old `path` (if any) is left untouched.
// A `path` that exists and is not a regular file (/dev/null, a named pipe) is written in place:
// renaming onto it would replace the device itself with a file.
void write_file_atomic(const std::string& path, const std::string& bytes);

// The streaming form, for files too large to build in memory first: `write` receives a binary
// output stream onto `path.tmp`. An exception thrown by `write` removes the temporary file and
// propagates; `path` is only replaced when `write` returns and every byte reached the disk.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

// The whole file as bytes. Throws std::runtime_error naming the path (and `what` the file was
// expected to be, e.g. "llama2.c checkpoint") when it is a directory or cannot be opened or read.
std::string read_file(const std::string& path, const std::string& what = "");

}  // namespace foundry
