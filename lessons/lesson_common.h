// What every lesson program shares: a named check that prints its result and counts failures,
// so that each program ends with `return failures == 0 ? 0 : 1;` and a failed check makes the
// lesson checker (tools/lesson_check) and the test suite fail.
#pragma once

#include <cstdio>

namespace lesson {

inline int failures = 0;  // checks that failed so far

inline void check(bool ok, const char* what) {
  std::printf("check: %s: %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) failures++;
}

}  // namespace lesson
