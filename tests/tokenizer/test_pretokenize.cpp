// UTF-8 decoding, character classes and GPT-2's pre-tokenization, checked on cases written out
// by hand from the pattern's alternatives (see tokenizer/pretokenize.h).
#include <catch2/catch.hpp>
#include <sstream>

#include "engine/rng.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

using namespace foundry;

namespace {

std::vector<std::string> pieces_of(const std::string& text) {
  std::vector<std::string_view> views;
  pretokenize(text, views);
  return std::vector<std::string>(views.begin(), views.end());
}

uint32_t cp_of(const std::string& utf8) {
  Utf8Char c = decode_utf8(utf8.data(), utf8.size());
  REQUIRE(c.len == static_cast<int>(utf8.size()));
  return c.cp;
}

// All pieces (with special marks) of split_and_pretokenize or of the stream version.
std::vector<std::pair<std::string, int>> split_whole(const std::string& text, const SpecialMatcher& m) {
  std::vector<std::pair<std::string, int>> out;
  split_and_pretokenize(text, m, [&](std::string_view p, int s) { out.emplace_back(std::string(p), s); });
  return out;
}
std::vector<std::pair<std::string, int>> split_stream(const std::string& text, const SpecialMatcher& m, size_t block) {
  std::vector<std::pair<std::string, int>> out;
  std::istringstream in(text);
  size_t n = split_and_pretokenize_stream(
      in, m, [&](std::string_view p, int s) { out.emplace_back(std::string(p), s); }, block);
  REQUIRE(n == text.size());
  return out;
}

}  // namespace

TEST_CASE("decode_utf8 accepts well-formed characters and rejects overlong, surrogate and out-of-range forms") {
  CHECK(cp_of("A") == 0x41);
  CHECK(cp_of("\xC3\xA9") == 0xE9);             // é
  CHECK(cp_of("\xE2\x82\xAC") == 0x20AC);       // €
  CHECK(cp_of("\xF0\x9F\x99\x82") == 0x1F642);  // 🙂
  auto invalid = [](const std::string& s, int len) {
    Utf8Char c = decode_utf8(s.data(), s.size());
    CHECK(c.cp == kInvalidCodepoint);
    CHECK(c.len == len);
  };
  invalid("\xC0\x80", 1);          // C0 never starts a character (overlong NUL)
  invalid("\xE0\x80\x80", 1);      // overlong 3-byte form: E0 needs A0..BF next
  invalid("\xED\xA0\x80", 1);      // a UTF-16 surrogate
  invalid("\xF4\x90\x80\x80", 1);  // above U+10FFFF
  invalid("\x80", 1);              // a lone continuation byte
  invalid("\xE2\x82", 2);          // truncated: the maximal subpart is both bytes
  invalid(
      "\xE2\x82"
      "A",
      2);  // cut by an ASCII byte, which is not consumed
}

TEST_CASE("utf8_replace_invalid shows each maximal invalid subpart as one U+FFFD") {
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(utf8_replace_invalid("abc") == "abc");
  CHECK(utf8_replace_invalid("\xE2\x82") == fffd);                    // a cut euro sign
  CHECK(utf8_replace_invalid("x\xF0\x9F\x99y") == "x" + fffd + "y");  // a cut emoji
  CHECK(utf8_replace_invalid("\xC3\x28") == fffd + "(");              // the '(' survives
  CHECK(utf8_replace_invalid("\xFF\xFE") == fffd + fffd);             // never-valid bytes: one each
  CHECK(is_valid_utf8("caf\xC3\xA9"));
  CHECK_FALSE(is_valid_utf8("caf\xC3"));
}

TEST_CASE("incomplete_utf8_tail finds a character cut by the end of a block") {
  CHECK(incomplete_utf8_tail("abc") == 0);
  CHECK(incomplete_utf8_tail("ab\xC3") == 1);
  CHECK(incomplete_utf8_tail("ab\xF0\x9F\x99") == 3);
  CHECK(incomplete_utf8_tail("ab\xF0\x9F\x99\x82") == 0);  // complete
  CHECK(incomplete_utf8_tail("ab\xC3\xA9") == 0);
  CHECK(incomplete_utf8_tail("ab\xE0\x80") == 0);  // invalid already: more bytes cannot fix it
}

TEST_CASE("character classes are Unicode letters, numbers and White_Space") {
  CHECK(char_class('a') == CharClass::kLetter);
  CHECK(char_class(cp_of("\xC3\xA9")) == CharClass::kLetter);      // é (Ll)
  CHECK(char_class(cp_of("\xE6\x97\xA5")) == CharClass::kLetter);  // 日 (Lo)
  CHECK(char_class(cp_of("\xCA\xB0")) == CharClass::kLetter);      // ʰ (Lm)
  CHECK(char_class('7') == CharClass::kNumber);
  CHECK(char_class(cp_of("\xD9\xA3")) == CharClass::kNumber);      // ٣ Arabic-Indic three (Nd)
  CHECK(char_class(cp_of("\xE2\x85\xAB")) == CharClass::kNumber);  // Ⅻ (Nl)
  CHECK(char_class(cp_of("\xC2\xB2")) == CharClass::kNumber);      // ² (No)
  CHECK(char_class('\n') == CharClass::kSpace);
  CHECK(char_class(0xA0) == CharClass::kSpace);    // no-break space
  CHECK(char_class(0x3000) == CharClass::kSpace);  // ideographic space
  CHECK(char_class('_') == CharClass::kOther);
  CHECK(char_class('\'') == CharClass::kOther);
  CHECK(char_class(0x1F642) == CharClass::kOther);  // 🙂 (So)
  CHECK(char_class(0x1C) == CharClass::kOther);     // a bidi separator but not White_Space
  CHECK(char_class(kInvalidCodepoint) == CharClass::kOther);
}

TEST_CASE("pretokenize follows GPT-2's pattern alternative by alternative") {
  using V = std::vector<std::string>;
  CHECK(pieces_of("") == V{});
  // ' ?\p{L}+' keeps the space with the word; punctuation runs stay together.
  CHECK(pieces_of("Hello world!!") == V{"Hello", " world", "!!"});
  // Contractions are cut off (lower case only); "'S" is punctuation then a letter run.
  CHECK(pieces_of("I'm they're we'll it's don't I've he'd") ==
        V{"I", "'m", " they", "'re", " we", "'ll", " it", "'s", " don", "'t", " I", "'ve", " he", "'d"});
  CHECK(pieces_of("IT'S") == V{"IT", "'", "S"});
  // Inside a punctuation run the apostrophe is consumed before the contraction can match.
  CHECK(pieces_of("!'s") == V{"!'", "s"});
  // Digits and letters never share a piece.
  CHECK(pieces_of("abc123def 42") == V{"abc", "123", "def", " 42"});
  // '\s+(?!\S)': a run of spaces gives its last space to the next word...
  CHECK(pieces_of("a   b") == V{"a", "  ", " b"});
  // ...a single whitespace character before a word that is not a space stays alone...
  CHECK(pieces_of("a\nb") == V{"a", "\n", "b"});
  CHECK(pieces_of("\n\nHello") == V{"\n", "\n", "Hello"});
  // ...and a run at the very end stays whole.
  CHECK(pieces_of("Hello\n\n") == V{"Hello", "\n\n"});
  CHECK(pieces_of("a \n  ") == V{"a", " \n  "});
  CHECK(pieces_of("x \n y") == V{"x", " \n", " y"});
  // A space before punctuation joins it: ' ?[^\s\p{L}\p{N}]+'.
  CHECK(pieces_of("a ,b") == V{"a", " ,", "b"});
  // Unicode letters and numbers, not just ASCII.
  CHECK(pieces_of("na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC \xD9\xA3\xD9\xA4") ==
        V{"na\xC3\xAFve", " \xE6\x97\xA5\xE6\x9C\xAC", " \xD9\xA3\xD9\xA4"});
  // An emoji is "other"; a space before it joins it.
  CHECK(pieces_of("Hi \xF0\x9F\x99\x82!") == V{"Hi", " \xF0\x9F\x99\x82!"});
  // Invalid bytes are "other" too, so any byte string can be cut.
  CHECK(pieces_of("ab\xFF\xFE cd") == V{"ab", "\xFF\xFE", " cd"});
}

TEST_CASE("pretokenize covers its input exactly, for random bytes") {
  Rng rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::string text(rng.below(64), '\0');
    for (char& c : text) c = static_cast<char>(rng.below(256));
    std::string joined;
    for (const std::string& p : pieces_of(text)) {
      CHECK_FALSE(p.empty());
      joined += p;
    }
    CHECK(joined == text);
  }
}

TEST_CASE("special tokens are matched leftmost, then longest, and cut out before pre-tokenization") {
  SpecialMatcher m({"<|a|>", "<|a|><|b|>", "<|endoftext|>"});
  using P = std::vector<std::pair<std::string, int>>;
  CHECK(split_whole("x<|a|><|b|>y", m) == P{{"x", -1}, {"<|a|><|b|>", 1}, {"y", -1}});
  CHECK(split_whole("<|a|> hi", m) == P{{"<|a|>", 0}, {" hi", -1}});
  CHECK(split_whole("Hello<|endoftext|> world", m) == P{{"Hello", -1}, {"<|endoftext|>", 2}, {" world", -1}});
  // An unfinished special token is ordinary text.
  CHECK(split_whole("<|endof", m) == P{{"<|", -1}, {"endof", -1}});
  CHECK(m.unfinished_suffix("abc<|endof") == 3);
  CHECK(m.unfinished_suffix("abc<|endoftext|>") == 16);
  CHECK(m.unfinished_suffix("abc") == 3);
}

TEST_CASE("the stream splitter gives exactly the pieces of the whole text, whatever the block size") {
  SpecialMatcher m({"<|endoftext|>", "<|pad|>"});
  std::vector<std::string> texts = {
      "Hello world's  2024!!\n\n<|endoftext|>They're here.   \n\nOnce<|pad|><|endoftext|>",
      "caf\xC3\xA9 na\xC3\xAFve \xF0\x9F\x99\x82\xF0\x9F\x99\x82 they've   x\t\t\ny <|endof <|endoftext",
      "a'rex'llama 'r'e 've\n",
  };
  Rng rng(5);
  for (int t = 0; t < 30; ++t) {  // random text made of the troublesome characters
    const char* parts[] = {
        " ", "  ", "\n", "'", "re", "ll", "a", "7", "\xC3\xA9", "\xF0\x9F\x99\x82", "<|endoftext|>", "<|", "!", "\xFF"};
    std::string s;
    for (int k = 0; k < 200; ++k) s += parts[rng.below(14)];
    texts.push_back(s);
  }
  const std::string story = test::load_corpus("tinystories.txt").substr(0, 20000);
  texts.push_back(story);
  for (const std::string& text : texts) {
    const auto whole = split_whole(text, m);
    for (size_t block : {1, 2, 3, 5, 7, 64, 4096}) {
      INFO("block " << block);
      CHECK(split_stream(text, m, block) == whole);
    }
  }
}
