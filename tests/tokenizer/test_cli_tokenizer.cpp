// `foundry tokenizer train | encode | decode | info` run as a user would, through the shell.
// Needs the foundry program of the same build (built by a full build, before the tests run).
#include <sys/wait.h>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/tokenizer.h"

namespace {

const std::string kFoundry = std::string(FOUNDRY_BINARY_DIR) + "/foundry";
const std::string kTmp = std::string(FOUNDRY_BINARY_DIR) + "/tokenizer_cli_test";

// Runs `foundry <args>`; returns the exit code, with stdout and stderr in the given strings.
int run(const std::string& args, std::string* out = nullptr, std::string* err = nullptr) {
  const std::string o = kTmp + "/stdout.txt", e = kTmp + "/stderr.txt";
  const int status = std::system((kFoundry + " " + args + " > " + o + " 2> " + e).c_str());
  if (out) *out = foundry::test::read_all(o);
  if (err) *err = foundry::test::read_all(e);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("foundry tokenizer: train, info, encode, decode and the errors, from the command line") {
  REQUIRE(std::filesystem::exists(kFoundry));  // build the `foundry` target first
  std::filesystem::create_directories(kTmp);
  const std::string corpus = kTmp + "/corpus.txt";
  {
    std::ofstream f(corpus, std::ios::binary);
    f << foundry::test::load_corpus("tinystories.txt").substr(0, 50000);
  }
  const std::string tok = kTmp + "/tok.json", listing = kTmp + "/vocab.txt";
  std::string out, err;
  REQUIRE(run("tokenizer train --input " + corpus + " --vocab-size 400 --special '<|endoftext|>' --out " + tok +
                  " --vocab-listing " + listing + " --quiet",
              &out, &err) == 0);
  CHECK(err.find("trained 400 tokens (143 merges, 1 special)") != std::string::npos);
  CHECK(foundry::test::read_all(listing).find("399\t\"<|endoftext|>\"\tspecial") != std::string::npos);
  CHECK(foundry::load_tokenizer(tok)->vocab_size() == 400);

  REQUIRE(run("tokenizer info --tokenizer " + tok, &out) == 0);
  CHECK(out.find("vocab size: 400") != std::string::npos);
  CHECK(out.find("eos id:     399") != std::string::npos);

  REQUIRE(run("tokenizer encode --tokenizer " + tok + " --text 'Once upon a time<|endoftext|>'", &out) == 0);
  CHECK(out.find(" 399\n") != std::string::npos);  // the special token, last
  const std::string ids = out.substr(0, out.size() - 1);
  REQUIRE(run("tokenizer decode --tokenizer " + tok + " --ids '" + ids + "'", &out) == 0);
  CHECK(out == "Once upon a time<|endoftext|>");
  // A file is streamed; decoding its ids gives the file back.
  const std::string ids_file = kTmp + "/ids.txt";
  REQUIRE(run("tokenizer encode --tokenizer " + tok + " --file " + corpus, &out) == 0);
  std::ofstream(ids_file) << out;
  REQUIRE(run("tokenizer decode --tokenizer " + tok + " --bytes --file " + ids_file, &out) == 0);
  CHECK(out == foundry::test::read_all(corpus));

  // Errors: exit code 1 and a message naming the problem.
  CHECK(run("tokenizer train --input /nonexistent.txt --vocab-size 300 --quiet", nullptr, &err) == 1);
  CHECK(err.find("/nonexistent.txt") != std::string::npos);
  const std::string empty = kTmp + "/empty.txt";
  std::ofstream(empty, std::ios::trunc).close();
  CHECK(run("tokenizer train --input " + empty + " --vocab-size 300 --quiet --out " + kTmp + "/x.json", nullptr,
            &err) == 1);
  CHECK(err.find("empty") != std::string::npos);
  // Below the 256 bytes the option itself is wrong: a usage error (exit 2) before any work.
  CHECK(run("tokenizer train --input " + corpus + " --vocab-size 200 --quiet --out " + kTmp + "/x.json", nullptr,
            &err) == 2);
  CHECK(err.find("at least 256") != std::string::npos);
  // 256 leaves no room for the special tokens: the trainer's own check (exit 1).
  CHECK(run("tokenizer train --input " + corpus + " --vocab-size 256 --special '<a>' --quiet --out " + kTmp + "/x.json",
            nullptr, &err) == 1);
  CHECK(err.find("too small") != std::string::npos);
  const std::string bad = kTmp + "/bad.json";
  std::ofstream(bad) << "{\"model\": {\"type\": \"WordPiece\"}}";
  CHECK(run("tokenizer info --tokenizer " + bad, nullptr, &err) == 1);
  CHECK(err.find("WordPiece") != std::string::npos);
  CHECK(run("tokenizer decode --tokenizer " + tok + " --ids '1 2 400'", nullptr, &err) == 1);
  CHECK(err.find("400") != std::string::npos);
  CHECK(run("tokenizer encode --tokenizer " + tok, nullptr, &err) == 2);  // usage error
}
