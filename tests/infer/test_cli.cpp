// End to end through the `foundry` program: import the llama2.c fixture, generate greedily (the
// numpy reference's tokens, as text), evaluate with --logits-out and read the .npy back.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/common/test_helpers.h"
#include "tokenizer/sentencepiece.h"
#include "train/token_file.h"

using namespace foundry;
namespace fs = std::filesystem;

namespace {

const std::string kSrc = FOUNDRY_SOURCE_DIR;
const std::string kBin = FOUNDRY_BINARY_DIR;

using test::read_bytes;

// Runs a shell command with OMP_NUM_THREADS=1; returns its exit status.
int run(const std::string& command) {
  std::string full = "OMP_NUM_THREADS=1 " + command;
  int status = std::system(full.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("foundry import, generate and eval on the llama2.c fixture", "[cli]") {
  const std::string foundry = kBin + "/foundry";
  REQUIRE(fs::exists(foundry));  // built by the default target
  const std::string fixture = kSrc + "/tests/fixtures/llama2c";
  const std::string dir = kBin + "/test_tmp_cli_llama2c";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string model = dir + "/model";

  REQUIRE(run(foundry + " import llama2c --checkpoint " + fixture + "/stories260K.bin --tokenizer " + fixture +
              "/tok512.bin --out " + model + " > " + dir + "/import.txt") == 0);
  CHECK(read_bytes(model + "/tokenizer.bin") == read_bytes(fixture + "/tok512.bin"));

  // Greedy continuation of a prompt read from stdin: the prompt, then the reference tokens as text.
  nlohmann::json ref = nlohmann::json::parse(read_bytes(fixture + "/reference.json"));
  const auto& run1 = ref["greedy_runs"][1];
  std::vector<int> ids = {1};
  for (int id : run1["prompt_ids"]) ids.push_back(id);
  for (int id : run1["new_ids"]) ids.push_back(id);
  auto tok = parse_llama2c_tokenizer(read_bytes(fixture + "/tok512.bin"), "tok512.bin");
  std::string expected = tok->decode(ids).substr(tok->piece(1).size()) + "\n";  // BOS is not shown
  { std::ofstream(dir + "/prompt.txt") << "Once upon a time"; }
  REQUIRE(run(foundry + " generate --model " + model + " --prompt - --temperature 0 --max-new-tokens " +
              std::to_string(run1["new_ids"].size()) + " < " + dir + "/prompt.txt > " + dir + "/out.txt 2> " + dir +
              "/err.txt") == 0);
  CHECK(read_bytes(dir + "/out.txt") == expected);
  CHECK(read_bytes(dir + "/err.txt").find("tokens/s") != std::string::npos);

  // A prompt longer than the context is an error with a message, exit code 1.
  {
    std::ofstream f(dir + "/long.txt");
    for (int i = 0; i < 600; i++) f << "cat ";
  }
  CHECK(run(foundry + " generate --model " + model + " --prompt-file " + dir + "/long.txt 2> " + dir +
            "/long_err.txt") == 1);
  CHECK(read_bytes(dir + "/long_err.txt").find("max_seq_len") != std::string::npos);

  // eval on a token file of `foundry prepare`'s format, with the logits as .npy.
  save_tokens(dir + "/tokens.bin", ids, 512);
  REQUIRE(run(foundry + " eval --model " + model + " --tokens " + dir + "/tokens.bin --window 32 --logits-out " + dir +
              "/logits.npy > " + dir + "/eval.txt 2> " + dir + "/eval_err.txt") == 0);
  std::string report = read_bytes(dir + "/eval.txt");
  CHECK(report.find("2 windows of 32 positions, 64 targets scored") != std::string::npos);
  CHECK(report.find("perplexity") != std::string::npos);
  std::string npy = read_bytes(dir + "/logits.npy");
  REQUIRE(npy.size() > 128);
  size_t header = 10 + ((unsigned char)npy[8] | ((unsigned char)npy[9] << 8));
  CHECK(npy.find("'shape': (2, 32, 512)") != std::string::npos);
  REQUIRE(npy.size() == header + 2 * 32 * 512 * 4);
  // Window 0, position 14 predicts token 15: compare with the numpy reference at position 14.
  double worst = 0;
  const auto& ref_logits = run1["logits"].at("14");
  for (int v = 0; v < 512; v++) {
    float x;
    std::memcpy(&x, npy.data() + header + (size_t)(14 * 512 + v) * 4, 4);
    worst = std::max(worst, std::fabs(double(x) - ref_logits[v].get<double>()));
  }
  CHECK(worst < 1e-4);
  CHECK_FALSE(fs::exists(dir + "/logits.npy.tmp"));

  CHECK(run(foundry + " eval --model " + model + " > " + dir + "/usage.txt 2>&1") == 2);  // neither --text nor --tokens
  fs::remove_all(dir);
}
