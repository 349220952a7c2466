// Inputs that once crashed, hung or allocated gigabytes in the BPE readers and encoder (found by
// fuzzing and by hand-made hostile files), kept so they stay fixed.
#include <catch2/catch.hpp>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/rng.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/bpe.h"

using namespace foundry;
using Ids = std::vector<int>;

namespace {

const BpeTokenizer& gpt2() {
  static const BpeTokenizer tok =
      BpeTokenizer::load_gpt2(test::fixture("gpt2/vocab.json"), test::fixture("gpt2/merges.txt"));
  return tok;
}

// A tokenizer.json whose vocabulary is the 256 bytes, spelled as GPT-2 spells them, plus `extra`
// (already JSON: `"key": value` pairs, with a leading comma).
std::string hf_json(const std::string& extra) {
  static const std::string byte_vocab = [] {
    nlohmann::json v = nlohmann::json::object();
    nlohmann::json full = nlohmann::json::parse(gpt2().to_hf_json());
    // The first 256 ids of GPT-2's vocabulary are the single bytes.
    for (auto it = full["model"]["vocab"].begin(); it != full["model"]["vocab"].end(); ++it)
      if (it.value().get<int>() < 256) v[it.key()] = it.value();
    std::string text = v.dump();
    text.pop_back();  // the closing brace
    return text;
  }();
  return R"({"model": {"type": "BPE", "merges": [], "vocab": )" + byte_vocab + extra +
         "}}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}";
}

std::string message_of(const std::string& json_text) {
  try {
    BpeTokenizer::from_hf_json(json_text, "t.json");
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

std::string scratch(const std::string& name, const std::string& content) {
  const std::string path = std::string(FOUNDRY_BINARY_DIR) + "/test_scratch/tokenizer_regressions_" + name;
  std::filesystem::create_directories(std::string(FOUNDRY_BINARY_DIR) + "/test_scratch");
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

}  // namespace

TEST_CASE("regression: the 256-byte vocabulary used below loads", "[regression]") {
  BpeTokenizer tok = BpeTokenizer::from_hf_json(hf_json(""), "t.json");
  CHECK(tok.vocab_size() == 256);
}

TEST_CASE("regression: one id of 100,000,000 in tokenizer.json is refused without allocating for it", "[regression]") {
  const std::string msg = message_of(hf_json(R"(, "zz": 100000000)"));
  CHECK(msg.find("t.json: no token has id 256 (ids must be 0..N-1, but one is 100000000 with 257 entries)") !=
        std::string::npos);
}

TEST_CASE("regression: ids that do not fit in an int are refused, not wrapped", "[regression]") {
  // 2^32 + 5 would wrap to 5 in a 32-bit int; 2^63 and -2^63 test both ends of JSON integers.
  CHECK(message_of(hf_json(R"(, "zz": 4294967301)")).find("model.vocab[\"zz\"] = 4294967301 is not an id") !=
        std::string::npos);
  CHECK(message_of(hf_json(R"(, "zz": 9223372036854775808)")).find("is not an id") != std::string::npos);
  CHECK(message_of(hf_json(R"(, "zz": -9223372036854775808)")).find("is not an id") != std::string::npos);
  CHECK(message_of(hf_json(R"(, "zz": 1.5)")).find("is not an integer id") != std::string::npos);
  // The same in added_tokens.
  std::string added = hf_json("");
  added.insert(1, R"("added_tokens": [{"id": 4294967552, "content": "<|x|>"}], )");
  CHECK(message_of(added).find("added_tokens id = 4294967552 is not an id") != std::string::npos);
}

TEST_CASE("regression: a flag of the wrong type in tokenizer.json names the file", "[regression]") {
  std::string text = hf_json("");
  text.replace(text.find(R"({"type": "ByteLevel"})"), 21, R"({"type": "ByteLevel", "add_prefix_space": 3})");
  CHECK(message_of(text).rfind("t.json: unexpected JSON structure", 0) == 0);
}

TEST_CASE("regression: one id of 100,000,000 in GPT-2's vocab.json is refused without allocating for it",
          "[regression]") {
  nlohmann::json v = nlohmann::json::parse(hf_json(""))["model"]["vocab"];
  v["zz"] = 100000000;
  const std::string vocab = scratch("vocab.json", v.dump());
  const std::string merges = scratch("merges.txt", "#version: 0.2\n");
  CHECK_THROWS_WITH(BpeTokenizer::load_gpt2(vocab, merges), Catch::Contains("but one is 100000000"));
}

TEST_CASE("regression: a huge token in an error message is cut short", "[regression]") {
  const std::string key(100000, 'q');
  const std::string msg = message_of(hf_json(", \"" + key + "\": -1"));
  CHECK(msg.find("is not an id") != std::string::npos);
  CHECK(msg.size() < 400);
}

TEST_CASE("regression: long pieces merge in O(n log n) and give the textbook loop's ids", "[regression]") {
  const BpeTokenizer& tok = gpt2();
  using M = BpeTokenizer::MergeMethod;
  // Both methods on pieces of every kind: one-letter runs ("aaaa", where merges overlap), text
  // with its spaces removed, digits, punctuation, random bytes.
  std::string shakespeare = test::load_corpus("tinyshakespeare.txt").substr(0, 20000);
  std::string letters;
  for (char ch : shakespeare)
    if (std::isalpha(static_cast<unsigned char>(ch))) letters += ch;  // one pre-token, however long
  Rng rng(11);
  std::vector<std::string> pieces = {std::string(1000, 'a'), letters.substr(0, 3000), std::string(777, '7'),
                                     std::string(300, '!'), "\xF0\x9F\x99\x82\xF0\x9F\x99\x82 hi"};
  for (int n : {1, 2, 3, 65, 200, 1500}) {
    std::string random;
    for (int k = 0; k < n; k++) random += static_cast<char>(rng.next_u64() & 0xff);
    pieces.push_back(random);
    std::string abc;
    for (int k = 0; k < n; k++) abc += "ab c"[rng.next_u64() % 4];
    pieces.push_back(abc);
  }
  for (const std::string& p : pieces) {
    INFO("piece of " << p.size() << " bytes starting \"" << escape_bytes(p.substr(0, 20)) << "\"");
    CHECK(tok.merge_piece(p, M::kHeap) == tok.merge_piece(p, M::kRounds));
  }
  // encode() takes the heap path for the long pre-tokens and must not change GPT-2's ids.
  const std::string long_word = letters.substr(0, 5000);
  Ids expected = tok.merge_piece(long_word, M::kRounds);
  CHECK(tok.encode(long_word) == expected);

  // A megabyte without a space is one pre-token; the textbook loop took minutes over it.
  std::string megabyte;
  while (megabyte.size() < (1u << 20)) megabyte += letters;
  megabyte.resize(1u << 20);
  Ids ids = tok.encode(megabyte);
  CHECK(tok.decode(ids) == megabyte);
  CHECK(ids.size() < megabyte.size() / 2);
}
