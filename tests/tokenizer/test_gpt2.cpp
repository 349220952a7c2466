// GPT-2's published vocabulary (tests/fixtures/tokenizer/gpt2): our encoder must give OpenAI's ids.
//
// How the expected ids were derived, independently of our code: the pre-tokens of each string
// were written down by hand from GPT-2's pattern; then a throwaway Python script that used only
// json.load(vocab.json) and the lines of merges.txt (no tokenizer library) spelled each
// pre-token in GPT-2's byte-to-unicode alphabet, merged the adjacent pair of lowest rank (line
// number in merges.txt, counting from 0 on the first line, since this copy has no "#version"
// header) until none was left, and looked the pieces up in vocab.json. The comment beside each
// case names the pieces (Ġ = space, Ċ = newline) so a reader can check them with grep.
#include <catch2/catch.hpp>

#include "engine/rng.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"

using namespace foundry;
using Ids = std::vector<int>;

namespace {

const BpeTokenizer& gpt2() {
  static const BpeTokenizer tok =
      BpeTokenizer::load_gpt2(test::fixture("gpt2/vocab.json"), test::fixture("gpt2/merges.txt"));
  return tok;
}

}  // namespace

TEST_CASE("GPT-2 files load with OpenAI's layout") {
  const BpeTokenizer& tok = gpt2();
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.merges().size() == 50000);
  CHECK(tok.eos_id() == 50256);
  CHECK(tok.special_ids() == Ids{50256});
  CHECK(tok.byte_id('!') == 0);     // GPT-2 puts the printable bytes first
  CHECK(tok.byte_id(' ') == 220);   // "Ġ"
  CHECK(tok.byte_id('\n') == 198);  // "Ċ"
  CHECK(tok.token_bytes(15496) == "Hello");
}

TEST_CASE("GPT-2 encodings match ids derived by hand from merges.txt and vocab.json") {
  const BpeTokenizer& tok = gpt2();
  CHECK(tok.encode("") == Ids{});
  // "a" = vocab["a"] = 64, a single byte.
  CHECK(tok.encode("a") == Ids{64});
  // 🙂 = F0 9F 99 82 = "ðŁĻĤ": merges "ð Ł" (rank 8325) and "Ļ Ĥ" (24824), then no "ðŁ ĻĤ"
  // merge exists: [ðŁ=8582, ĻĤ=25081].
  CHECK(tok.encode("\xF0\x9F\x99\x82") == Ids{8582, 25081});
  // With a space before it the piece is " 🙂", which merges all the way to "ĠðŁĻĤ" = 32485.
  CHECK(tok.encode("Hi \xF0\x9F\x99\x82") == Ids{17250, 32485});
  // "café naïve Zürich": pieces "café" " naïve" " Zürich". café = c(66) af(1878) Ã©(2634);
  // " naïve" is whole in vocab (ĠnaÃ¯ve = 41492); " Zürich" = ĠZ(1168) Ã¼(9116) rich(7527).
  CHECK(tok.encode("caf\xC3\xA9 na\xC3\xAFve Z\xC3\xBCrich") == Ids{66, 1878, 2634, 41492, 1168, 9116, 7527});
  // Runs of spaces: "a", "  " (no "Ġ Ġ" merge in GPT-2: 220 220), " b" (Ġb = 275).
  CHECK(tok.encode("a   b") == Ids{64, 220, 220, 275});
  // Newlines: "a", "\n\n\n" = ĊĊ(628) Ċ(198) (merge "Ċ Ċ" applies left to right), "b".
  CHECK(tok.encode("a\n\n\nb") == Ids{64, 628, 198, 65});
  // "\n\n" before text: the run gives its last "\n" back, and a newline never joins a word, so
  // "\n" "\n" "Hello" = 198 198 15496 (not ĊĊ = 628).
  CHECK(tok.encode("\n\nHello") == Ids{198, 198, 15496});
  // "\n\n" at the end stays one piece: "Hello" "\n\n" = 15496 628.
  CHECK(tok.encode("Hello\n\n") == Ids{15496, 628});
  // Contractions: I(40) 'm(1101) Ġsure(1654) Ġthey(484) 're(821) Ġhere(994) Ġand(290) Ġwe(356)
  // 'll(1183) Ġsee(766) Ġit(340) 's(338) Ġdon(836) 't(470).
  CHECK(tok.encode("I'm sure they're here and we'll see it's don't") ==
        Ids{40, 1101, 1654, 484, 821, 994, 290, 356, 1183, 766, 340, 338, 836, 470});
  // Digits: In(818) Ġ2024(48609) ,(11) " 1234567" = Ġ123(17031) 45(2231) 67(3134), Ġitems(3709).
  CHECK(tok.encode("In 2024, 1234567 items") == Ids{818, 48609, 11, 17031, 2231, 3134, 3709});
  // <|endoftext|> inside text is the special token 50256, never split; " world" = Ġworld = 995.
  CHECK(tok.encode("Hello<|endoftext|> world") == Ids{15496, 50256, 995});
  // A tab before a word stays alone (ĉ = 197).
  CHECK(tok.encode("a\tb") == Ids{64, 197, 65});
}

TEST_CASE("GPT-2 round trip: bytes come back exactly, and cut characters decode visibly") {
  const BpeTokenizer& tok = gpt2();
  Ids emoji = tok.encode("\xF0\x9F\x99\x82");
  CHECK(tok.decode({emoji[0]}) == "\xF0\x9F");           // half an emoji: the exact bytes...
  CHECK(tok.decode_text({emoji[0]}) == "\xEF\xBF\xBD");  // ...and U+FFFD as text
  CHECK(tok.decode_text(emoji) == "\xF0\x9F\x99\x82");
  CHECK_THROWS_WITH(tok.decode({15496, 50257}), Catch::Contains("50257") && Catch::Contains("position 1"));
  CHECK_THROWS_AS(tok.decode({-1}), std::invalid_argument);
  Rng rng(7);
  for (int trial = 0; trial < 100; ++trial) {
    std::string bytes(rng.below(200), '\0');
    for (char& c : bytes) c = static_cast<char>(rng.below(256));
    CHECK(tok.decode(tok.encode(bytes)) == bytes);
  }
}

TEST_CASE("GPT-2 saved as tokenizer.json loads back and encodes the same") {
  const BpeTokenizer& tok = gpt2();
  const std::string dir = std::string(FOUNDRY_BINARY_DIR) + "/tokenizer_test_gpt2_json";
  tok.save_to_dir(dir);
  std::unique_ptr<Tokenizer> back = load_tokenizer(dir);
  CHECK(back->kind() == "bpe");
  CHECK(back->vocab_size() == 50257);
  CHECK(back->eos_id() == 50256);
  const std::string text = test::load_corpus("tinyshakespeare.txt").substr(0, 50000) + "<|endoftext|> caf\xC3\xA9";
  CHECK(back->encode(text) == tok.encode(text));
  // The fixture directory itself (vocab.json + merges.txt) loads through load_tokenizer too.
  CHECK(load_tokenizer(test::fixture("gpt2"))->encode("Hello world") == Ids{15496, 995});
}
