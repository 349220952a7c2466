// Encoding and decoding with trained tokenizers: round trips, streaming, special tokens, the
// tokenizer.json files and their errors, the vocabulary listing.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/rng.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/bpe_train.h"

using namespace foundry;
using Ids = std::vector<int>;

namespace {

// One tokenizer trained on 200 KB of TinyStories, shared by the tests below.
const BpeTokenizer& stories_tokenizer() {
  static const BpeTokenizer tok = [] {
    BpeTrainOptions o;
    o.vocab_size = 1024;
    o.special_tokens = {"<|endoftext|>", "<|end|>", "<|end|><|pad|>"};
    return train_bpe(std::string_view(test::load_corpus("tinystories.txt")).substr(0, 200000), o);
  }();
  return tok;
}

std::string temp_path(const std::string& name) { return std::string(FOUNDRY_BINARY_DIR) + "/tokenizer_test_" + name; }

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

}  // namespace

TEST_CASE("encode then decode gives back any byte string exactly") {
  const BpeTokenizer& tok = stories_tokenizer();
  Rng rng(99);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes(rng.below(300), '\0');
    for (char& c : bytes) c = static_cast<char>(rng.below(256));
    Ids ids = tok.encode(bytes);
    CHECK(tok.decode(ids) == bytes);
    for (int id : ids) CHECK((id >= 0 && id < tok.vocab_size()));
  }
  for (const char* name : {"tinystories.txt", "tinyshakespeare.txt"}) {
    INFO(name);
    const std::string text = test::load_corpus(name);
    Ids ids = tok.encode(text);
    CHECK(tok.decode(ids) == text);
    CHECK(ids.size() < text.size());  // it compresses
  }
}

TEST_CASE("encoding merges: a trained tokenizer spells common words as one token") {
  const BpeTokenizer& tok = stories_tokenizer();
  Ids once = tok.encode(" upon");
  REQUIRE(once.size() == 1);  // " upon" is everywhere in "Once upon a time"
  CHECK(tok.token_bytes(once[0]) == " upon");
  CHECK(tok.encode("Once upon a time").size() <= 4);
}

TEST_CASE("special tokens are matched whole and longest first") {
  const BpeTokenizer& tok = stories_tokenizer();
  const int eot = tok.special_id("<|endoftext|>"), end = tok.special_id("<|end|>"),
            both = tok.special_id("<|end|><|pad|>");
  CHECK(eot == 1021);
  CHECK(end == 1022);
  CHECK(both == 1023);
  CHECK(tok.eos_id() == eot);
  CHECK(tok.encode("<|end|><|pad|>") == Ids{both});
  CHECK(tok.encode("<|end|><|end|>") == Ids{end, end});
  Ids ids = tok.encode("The end.<|endoftext|>Once");
  CHECK(std::count(ids.begin(), ids.end(), eot) == 1);
  CHECK(tok.decode(ids) == "The end.<|endoftext|>Once");
  // An unfinished special token is plain text.
  Ids part = tok.encode("<|endoftext");
  CHECK(std::find(part.begin(), part.end(), eot) == part.end());
}

TEST_CASE("decode: unknown ids are an error, cut characters show as U+FFFD") {
  const BpeTokenizer& tok = stories_tokenizer();
  CHECK_THROWS_WITH(tok.decode({1, 2, 1024}), Catch::Contains("1024") && Catch::Contains("outside"));
  CHECK_THROWS_AS(tok.decode_text({-5}), std::invalid_argument);
  // "é" is C3 A9; with ids 0..255 being bytes, id 0xC3 alone is half a character.
  CHECK(tok.decode({0xC3}) == "\xC3");
  CHECK(tok.decode_text({'a', 0xC3, 'b'}) ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(tok.decode_text({0xC3, 0xA9}) == "\xC3\xA9");
}

TEST_CASE("streaming encode equals whole encode, in bounded blocks") {
  const BpeTokenizer& tok = stories_tokenizer();
  std::string text = test::load_corpus("tinystories.txt").substr(0, 100000);
  text += "<|end|><|pad|> caf\xC3\xA9 \xF0\x9F\x99\x82 they're<|endoftext|>\n\n  ";
  const Ids whole = tok.encode(text);
  for (size_t block : {7, 1000, 65536}) {
    std::istringstream in(text);
    Ids streamed;
    size_t batches = 0;
    size_t n = tok.encode_stream(
        in,
        [&](const Ids& ids) {
          streamed.insert(streamed.end(), ids.begin(), ids.end());
          ++batches;
        },
        block);
    CHECK(n == text.size());
    CHECK(streamed == whole);
    CHECK(batches >= 1);
  }
}

TEST_CASE("tokenizer.json: save, load, and the same encodings") {
  const BpeTokenizer& tok = stories_tokenizer();
  const std::string dir = temp_path("json_dir");
  tok.save_to_dir(dir);
  std::unique_ptr<Tokenizer> back = load_tokenizer(dir);  // the directory form
  CHECK(back->vocab_size() == tok.vocab_size());
  CHECK(back->eos_id() == tok.eos_id());
  const std::string text = test::load_corpus("tinyshakespeare.txt").substr(0, 30000) + "<|end|><|pad|>x<|endoftext|>";
  CHECK(back->encode(text) == tok.encode(text));
  // The file form, and the format's fields as Hugging Face names them.
  const std::string json_text = test::read_all(dir + "/tokenizer.json");
  BpeTokenizer direct = BpeTokenizer::load_json(dir + "/tokenizer.json");
  CHECK(direct.merges().size() == tok.merges().size());
  CHECK(json_text.find("\"type\": \"BPE\"") != std::string::npos);
  CHECK(json_text.find("\"type\": \"ByteLevel\"") != std::string::npos);
  CHECK(json_text.find("\"content\": \"<|endoftext|>\"") != std::string::npos);
  CHECK(json_text.find("\"\xC4\xA0upon\": ") != std::string::npos);  // " upon" spelled "Ġupon" (U+0120)
}

TEST_CASE("tokenizer.json accepts both merge spellings") {
  // Our own file with its "a b" merges rewritten as ["a", "b"] pairs, the newer spelling.
  const BpeTokenizer& tok = stories_tokenizer();
  nlohmann::json j = nlohmann::json::parse(tok.to_hf_json());
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& m : j["model"]["merges"]) {
    std::string s = m.get<std::string>();
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  j["model"]["merges"] = pairs;
  BpeTokenizer back = BpeTokenizer::from_hf_json(j.dump(), "pairs.json");
  CHECK(back.encode("Once upon a time, there was a little girl.") ==
        tok.encode("Once upon a time, there was a little girl."));
}

TEST_CASE("malformed or unsupported tokenizer.json files get errors naming the problem") {
  const BpeTokenizer& tok = stories_tokenizer();
  const nlohmann::json good = nlohmann::json::parse(tok.to_hf_json());
  auto fails_with = [](const nlohmann::json& j, const std::string& what) {
    CHECK_THROWS_WITH(BpeTokenizer::from_hf_json(j.dump(), "t.json"),
                      Catch::Contains("t.json") && Catch::Contains(what));
  };
  CHECK_THROWS_WITH(BpeTokenizer::from_hf_json("{ not json", "t.json"), Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(BpeTokenizer::from_hf_json("[1,2]", "t.json"), Catch::Contains("no \"model\""));
  nlohmann::json j = good;
  j["model"]["type"] = "WordPiece";
  fails_with(j, "only \"BPE\"");
  j = good;
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  fails_with(j, "Metaspace");
  j = good;
  j["normalizer"] = {{"type", "NFC"}};
  fails_with(j, "NFC");
  j = good;
  j["model"]["merges"][3] = "abc";
  fails_with(j, "merges[3]");
  j = good;
  j["model"]["merges"][5] = "\xC4\xA0zzzq xq";  // tokens not in the vocabulary
  fails_with(j, "merge 5");
  j = good;
  j["model"]["vocab"].erase("a");  // byte 'a' loses its token: id 97 is missing
  fails_with(j, "97");
  j = good;
  j["model"]["vocab"]["zz\xE2\x82\xAC"] = 5000;  // € is not in the byte-to-unicode table
  fails_with(j, "byte-level");
  j = good;
  j["model"]["byte_fallback"] = true;
  fails_with(j, "byte_fallback");
  // A missing file and a directory without a tokenizer.
  CHECK_THROWS_WITH(load_tokenizer("/nonexistent/tokenizer.json"), Catch::Contains("/nonexistent/tokenizer.json"));
  CHECK_THROWS_WITH(BpeTokenizer::load_json("/nonexistent/tokenizer.json"), Catch::Contains("cannot open"));
  const std::string empty_dir = temp_path("empty_dir");
  std::filesystem::create_directories(empty_dir);
  CHECK_THROWS_WITH(load_tokenizer(empty_dir), Catch::Contains("no tokenizer.json"));
  const std::string bad = temp_path("bad.json");
  write_file(bad, "{\"model\": {\"type\": \"Unigram\"}}");
  CHECK_THROWS_WITH(load_tokenizer(bad), Catch::Contains(bad) && Catch::Contains("Unigram"));
  std::remove(bad.c_str());
}

TEST_CASE("the vocabulary listing shows escaped bytes and each merge's parents") {
  BpeTrainOptions o;
  o.vocab_size = 256 + 2 + 1;  // merges (a,a) and (a,b), then the special token
  o.special_tokens = {"<|endoftext|>"};
  BpeTokenizer tok = train_bpe(std::string_view("aa\naa\naa\nab\n"), o);
  const std::string listing = tok.vocab_listing();
  CHECK(listing.find("10\t\"\\n\"\n") != std::string::npos);  // byte 10 shown escaped
  CHECK(listing.find("256\t\"aa\"\t= 97 \"a\" + 97 \"a\"\n") != std::string::npos);
  CHECK(listing.find("258\t\"<|endoftext|>\"\tspecial\n") != std::string::npos);
  CHECK(escape_bytes("\xC3\xA9\xFF\t\"") == "\xC3\xA9\\xff\\t\\\"");
}

TEST_CASE("a vocabulary with two ids for the same bytes is refused by tokenizer.json, not written wrongly") {
  // "abc" made twice: (ab, c) and (a, bc). Hugging Face's vocab maps text -> id, so it could
  // keep only one of them and would then encode differently from us.
  std::vector<std::string> vocab(256);
  for (int b = 0; b < 256; ++b) vocab[b] = std::string(1, static_cast<char>(b));
  vocab.insert(vocab.end(), {"ab", "abc", "bc", "abc"});
  BpeTokenizer tok(vocab, {{'a', 'b', 256}, {256, 'c', 257}, {'b', 'c', 258}, {'a', 258, 259}}, {});
  CHECK(tok.encode("abc") == Ids{257});
  CHECK_THROWS_WITH(tok.to_hf_json(),
                    Catch::Contains("257") && Catch::Contains("259") && Catch::Contains("same bytes"));
  // And a merge whose result is not the concatenation of its parents is rejected at once.
  CHECK_THROWS_AS(BpeTokenizer(vocab, {{'a', 'b', 258}}, {}), std::invalid_argument);
}
