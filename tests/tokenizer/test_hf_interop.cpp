// Interoperability with Hugging Face's tokenizers library: a tokenizer.json written by that
// library loads here, and both tokenizers give the ids that library gave for a text full of
// hard cases (tests/fixtures/tokenizer/hf/SOURCE.md says how the fixtures were made).
#include <catch2/catch.hpp>
#include <sstream>

#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/bpe.h"

using namespace foundry;

namespace {

std::vector<int> read_ids(const std::string& path) {
  std::istringstream in(test::read_all(path));
  std::vector<int> ids;
  int id = 0;
  while (in >> id) ids.push_back(id);
  return ids;
}

}  // namespace

TEST_CASE("a tokenizer.json saved by Hugging Face's library loads and encodes as that library does") {
  const std::string text = test::read_all(test::fixture("hf/text.txt"));
  BpeTokenizer tok = BpeTokenizer::load_json(test::fixture("hf/tokenizer.json"));
  CHECK(tok.vocab_size() == 300);
  CHECK(tok.special_ids() == std::vector<int>{298, 299});
  const std::vector<int> expected = read_ids(test::fixture("hf/ids_small.txt"));
  REQUIRE(expected.size() > 1000);
  CHECK(tok.encode(text) == expected);
  CHECK(tok.decode(expected) == text);
}

TEST_CASE("GPT-2 encodes the hard-case text exactly as Hugging Face's library does") {
  const std::string text = test::read_all(test::fixture("hf/text.txt"));
  BpeTokenizer tok = BpeTokenizer::load_gpt2(test::fixture("gpt2/vocab.json"), test::fixture("gpt2/merges.txt"));
  const std::vector<int> expected = read_ids(test::fixture("hf/ids_gpt2.txt"));
  REQUIRE(expected.size() > 1000);
  CHECK(tok.encode(text) == expected);
}
