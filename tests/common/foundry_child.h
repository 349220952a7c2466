// The `foundry` program as a user runs it, in a child process, optionally stopped by a real
// signal (SIGINT as Ctrl-C sends it, SIGTERM as a job scheduler does): the tests that stop a run,
// resume it and compare its files' bytes with an uninterrupted run's share this instead of each
// writing its own fork, exec, poll and kill.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "tests/common/test_helpers.h"

namespace foundry::test {

struct ChildRun {
  int status = -1;     // the wait status (WIFEXITED, WEXITSTATUS, WIFSIGNALED)
  std::string output;  // what the child wrote to stdout and stderr, interleaved as it wrote it
};

// FOUNDRY_BINARY_DIR/foundry ARGS in a child process, its stdout and stderr to the file `log`.
// With a signal: polls `ready` every millisecond and sends the signal once it holds (the program
// installs its handlers before its first step, so `ready` should wait for a sign of a step: a
// progress line in the log, a line in metrics.jsonl); the test fails, showing the log, when the
// child ends before that. Returns once the child has ended.
inline ChildRun run_foundry(const std::vector<std::string>& args, const std::string& log, int signal = 0,
                            const std::function<bool()>& ready = {}) {
  const std::string foundry = std::string(FOUNDRY_BINARY_DIR) + "/foundry";
  REQUIRE((signal == 0 || ready));
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>(foundry.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(foundry.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  if (signal != 0) {
    while (!ready()) {
      if (waitpid(pid, &status, WNOHANG) == pid) FAIL("foundry ended before it was signalled:\n" << read_bytes(log));
      usleep(1000);
    }
    kill(pid, signal);
  }
  waitpid(pid, &status, 0);
  return ChildRun{status, read_bytes(log)};
}

// A `ready` for run_foundry: the child's log shows `text` (a progress line such as "step 3/").
inline std::function<bool()> log_shows(const std::string& log, const std::string& text) {
  return [log, text] { return read_bytes(log).find(text) != std::string::npos; };
}

// Each of `files` (paths relative to both folders) holds the same bytes in run `a` as in run `b`:
// one CHECK per file, naming it.
inline void check_same_bytes(const std::string& a, const std::string& b, const std::vector<std::string>& files) {
  for (const std::string& file : files) {
    INFO("the same bytes in " << a << "/" << file << " and " << b << "/" << file);
    const bool same = read_all(a + "/" + file) == read_all(b + "/" + file);  // not the bytes into the report
    CHECK(same);
  }
}

}  // namespace foundry::test
