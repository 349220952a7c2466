// The BPE trainers: a worked example checked by hand, the tie rule, the id layout, the errors,
// and the incremental trainer against the naive oracle on several corpora.
#include <catch2/catch.hpp>
#include <cstdio>

#include "engine/rng.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/bpe_train.h"

using namespace foundry;
using MergeList = std::vector<std::pair<std::string, std::string>>;

namespace {

PretokenCounts counts_of(const std::string& text, const std::vector<std::string>& specials = {}) {
  PretokenCounts c;
  count_pretokens(text, specials, c);
  return c;
}

BpeTokenizer train(const std::string& text, int vocab_size, std::vector<std::string> specials = {}) {
  BpeTrainOptions o;
  o.vocab_size = vocab_size;
  o.special_tokens = std::move(specials);
  return train_bpe(text, o);
}

}  // namespace

TEST_CASE("a worked example: low x5, lower x2, newest x6") {
  // The words are joined by newlines: GPT-2's pattern makes each "\n" a piece of its own, and a
  // one-byte piece has no pairs, so only the three words are counted.
  std::string text;
  for (int i = 0; i < 5; ++i) text += "low\n";
  for (int i = 0; i < 2; ++i) text += "lower\n";
  for (int i = 0; i < 6; ++i) text += "newest\n";
  // By hand: pairs (l,o)=7 (o,w)=7 (w,e)=8 (e,r)=2 (n,e)=6 (e,w)=6 (e,s)=6 (s,t)=6.
  //   1. (w,e)=8 -> "we".  Now l o we r | n e we s t: (l,o)=7 (o,we)=2 (we,r)=2 (n,e)=6 (e,we)=6 (we,s)=6 (s,t)=6
  //   2. (l,o)=7 -> "lo".  low: lo w; lower: lo we r: (lo,w)=5 (lo,we)=2 ...
  //   3. ties at 6: (n,e) (e,we) (we,s) (s,t) and (lo,w)=5 below; the greatest first bytes win:
  //      "we" > "s" > "n" > "e", so (we,s) -> "wes".
  //   4. then (wes,t)=6 vs (n,e)=6 vs (e,wes)=6: "wes" is greatest -> "west".
  //   5. (n,e)=6 vs (e,west)=6: "n" > "e" -> "ne".  6. (ne,west)=6 -> "newest".  7. (lo,w)=5 -> "low".
  const MergeList expected = {{"w", "e"}, {"l", "o"},     {"we", "s"}, {"wes", "t"},
                              {"n", "e"}, {"ne", "west"}, {"lo", "w"}};
  BpeTokenizer tok = train(text, 256 + 7);
  CHECK(merge_bytes(tok) == expected);
  CHECK(train_bpe_naive(counts_of(text), 7) == expected);
  // Ids: bytes, then merges in creation order.
  CHECK(tok.vocab()[256] == "we");
  CHECK(tok.vocab()[262] == "low");
  // "lower" = lo we r: (lo,w) never applies because w was merged into "we" first.
  CHECK(tok.encode("lower\nnewest") == std::vector<int>{257, 256, 'r', '\n', 261});
}

TEST_CASE("tie rule: equal counts go to the greater first token's bytes, then the second's") {
  // "ab" and "ba" once each, as separate pieces: (a,b)=1 and (b,a)=1 tie; "b" > "a", so (b,a).
  CHECK(merge_bytes(train("ab ba", 257)).front() == std::pair<std::string, std::string>{"b", "a"});
  // Same first token: "ab ac" has (a,b)=1 (" ",a)=1 (a,c)=1; "a" > " ", then "c" > "b".
  CHECK(merge_bytes(train("ab ac", 257)).front() == std::pair<std::string, std::string>{"a", "c"});
  // Bytes compare as unsigned: 0xC3 (first byte of é) is greater than 'z'.
  CHECK(merge_bytes(train("zz\n\xC3\xA9", 257)).front() == std::pair<std::string, std::string>{"\xC3", "\xA9"});
}

TEST_CASE("special tokens come after the merges, are never merged and never counted") {
  const std::string text = "hello<|endoftext|>hello<|endoftext|><|endoftext|>world";
  BpeTokenizer tok = train(text, 256 + 6 + 2, {"<|endoftext|>", "<|pad|>"});
  CHECK(tok.vocab_size() == 264);
  CHECK(tok.vocab()[262] == "<|endoftext|>");
  CHECK(tok.vocab()[263] == "<|pad|>");
  CHECK(tok.special_ids() == std::vector<int>{262, 263});
  CHECK(tok.eos_id() == 262);
  for (const auto& [l, r] : merge_bytes(tok)) {
    CHECK(l.find('<') == std::string::npos);  // no merge ever touched the special token's text
    CHECK(r.find('|') == std::string::npos);
  }
  CHECK(tok.encode("<|endoftext|>") == std::vector<int>{262});
  CHECK(tok.decode(tok.encode(text)) == text);
}

TEST_CASE("the trainer reports bad options and empty corpora clearly") {
  BpeTrainOptions o;
  o.vocab_size = 256;
  o.special_tokens = {"<|endoftext|>"};
  CHECK_THROWS_WITH(train_bpe(std::string_view("abc"), o), Catch::Contains("at least 257"));
  o.vocab_size = 300;
  CHECK_THROWS_WITH(train_bpe(std::string_view(""), o), Catch::Contains("empty"));
  CHECK_THROWS_WITH(train_bpe(std::string_view("<|endoftext|><|endoftext|>"), o), Catch::Contains("empty"));
  o.special_tokens = {"<|a|>", "<|a|>"};
  CHECK_THROWS_WITH(train_bpe(std::string_view("abc"), o), Catch::Contains("twice"));
  o.special_tokens = {};
  CHECK_THROWS_WITH(train_bpe_files({"/nonexistent/corpus.txt"}, o), Catch::Contains("/nonexistent/corpus.txt"));
  const std::string empty_file = std::string(FOUNDRY_BINARY_DIR) + "/tokenizer_test_empty.txt";
  { std::ofstream(empty_file, std::ios::trunc); }
  CHECK_THROWS_WITH(train_bpe_files({empty_file}, o), Catch::Contains("empty") && Catch::Contains(empty_file));
  std::remove(empty_file.c_str());
}

TEST_CASE("training stops early when nothing is left to merge") {
  BpeTokenizer tok = train("ab ab", 1000);
  // " ab" and "ab": merges (a,b) then (" ", ab) and nothing more.
  CHECK(tok.merges().size() == 2);
  CHECK(tok.vocab_size() == 258);
}

TEST_CASE("incremental and naive trainers make identical merges on several corpora") {
  const std::string stories = test::load_corpus("tinystories.txt");
  const std::string shakespeare = test::load_corpus("tinyshakespeare.txt");
  Rng rng(2024);
  std::string random_bytes(6000, '\0');
  for (char& c : random_bytes) c = static_cast<char>(rng.below(256));
  std::string small_alphabet;  // many ties: few symbols, near-uniform counts
  for (int i = 0; i < 20000; ++i) small_alphabet += "ab c\n"[rng.below(5)];
  struct Case {
    const char* name;
    std::string text;
    int merges;
    std::vector<std::string> specials;
  };
  std::vector<Case> cases = {
      {"tinystories 60 KB with <|endoftext|>", stories.substr(0, 60000), 400, {"<|endoftext|>"}},
      {"tinyshakespeare 40 KB", shakespeare.substr(0, 40000), 300, {}},
      {"random bytes", random_bytes, 200, {}},
      {"small alphabet (ties)", small_alphabet, 150, {}},
      {"specials inside words",
       "the<|x|>re<|x|>there the<|yy|>re " + stories.substr(0, 5000),
       120,
       {"<|x|>", "<|yy|>"}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    BpeTrainOptions o;
    o.special_tokens = c.specials;
    o.vocab_size = 256 + c.merges + static_cast<int>(c.specials.size());
    PretokenCounts counts = counts_of(c.text, c.specials);
    BpeTokenizer fast = train_bpe(counts, o);
    MergeList oracle = train_bpe_naive(counts, c.merges);
    REQUIRE(fast.merges().size() == oracle.size());
    CHECK(merge_bytes(fast) == oracle);
  }
}

TEST_CASE("training from files streams them and equals training from the text") {
  const std::string stories = test::load_corpus("tinystories.txt").substr(0, 30000);
  const std::string a = std::string(FOUNDRY_BINARY_DIR) + "/tokenizer_test_a.txt";
  const std::string b = std::string(FOUNDRY_BINARY_DIR) + "/tokenizer_test_b.txt";
  // Cut the text between two pre-tokens (after a newline) so the two files pre-tokenize alike.
  const size_t cut = stories.find('\n', 15000) + 1;
  std::ofstream(a, std::ios::binary) << stories.substr(0, cut);
  std::ofstream(b, std::ios::binary) << stories.substr(cut);
  BpeTrainOptions o;
  o.vocab_size = 400;
  o.special_tokens = {"<|endoftext|>"};
  CHECK(merge_bytes(train_bpe_files({a, b}, o)) == merge_bytes(train_bpe(std::string_view(stories), o)));
  std::remove(a.c_str());
  std::remove(b.c_str());
}
