// The one main() of every Catch2 test binary, compiled once (Catch2's header is slow to compile).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
