// Lesson 11: byte-pair encoding. A worked example small enough to follow by hand, what
// pre-tokenization prevents, why a byte-level vocabulary has no unknown token, special tokens
// kept whole, GPT-2's own files, and the naive trainer timed against the incremental one.
// Exits non-zero if any check fails.
//
//   build/lessons/lesson_11
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "lessons/lesson_common.h"
#include "tokenizer/bpe_train.h"
#include "tokenizer/unicode.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

std::string show(const std::string& bytes) { return "\"" + escape_bytes(bytes) + "\""; }

std::string show_ids(const BpeTokenizer& tok, const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) out += (out.empty() ? "" : " ") + std::to_string(id) + ":" + show(tok.token_bytes(id));
  return out;
}

// ANCHOR: lesson_count_pairs
// The counting step of BPE written out for the worked example: each word is a list of tokens
// (byte strings here, for readability) with the number of times it occurs.
struct Word {
  std::vector<std::string> tokens;
  int count;
};

std::map<std::pair<std::string, std::string>, int> count_pairs(const std::vector<Word>& words) {
  std::map<std::pair<std::string, std::string>, int> counts;
  for (const Word& w : words)
    for (size_t k = 0; k + 1 < w.tokens.size(); ++k) counts[{w.tokens[k], w.tokens[k + 1]}] += w.count;
  return counts;
}
// ANCHOR_END: lesson_count_pairs

std::string read_corpus(const std::string& name) {
  const std::filesystem::path source(FOUNDRY_SOURCE_DIR);
  for (const std::filesystem::path& p : {source / "data" / name, source / ".." / "shared" / "data" / name}) {
    std::ifstream in(p, std::ios::binary);
    if (!in) continue;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  return "";
}

double seconds_of(const std::chrono::steady_clock::time_point& t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void worked_example() {
  std::printf("[worked_example]\n");
  std::vector<Word> words = {{{"l", "o", "w"}, 5}, {{"l", "o", "w", "e", "r"}, 2}, {{"n", "e", "w", "e", "s", "t"}, 6}};
  std::vector<std::pair<std::string, std::string>> by_hand;
  for (int step = 1; step <= 7; ++step) {
    auto counts = count_pairs(words);
    // The most frequent pair; ties go to the greater (left, right) bytes, as in the trainer.
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it)
      if (it->second > best->second || (it->second == best->second && it->first > best->first)) best = it;
    std::printf("step %d counts:", step);
    for (const auto& [pair, c] : counts) std::printf(" %s+%s=%d", pair.first.c_str(), pair.second.c_str(), c);
    const std::string merged = best->first.first + best->first.second;
    std::printf("\n  merge %s + %s -> %s (count %d)\n", best->first.first.c_str(), best->first.second.c_str(),
                merged.c_str(), best->second);
    by_hand.push_back(best->first);
    for (Word& w : words) {  // replace the pair left to right in every word
      std::vector<std::string> out;
      for (size_t k = 0; k < w.tokens.size(); ++k) {
        if (k + 1 < w.tokens.size() && w.tokens[k] == best->first.first && w.tokens[k + 1] == best->first.second) {
          out.push_back(merged);
          ++k;
        } else {
          out.push_back(w.tokens[k]);
        }
      }
      w.tokens = out;
    }
  }
  // The library's trainer on the same words (joined by newlines, which become pieces of their own).
  std::string text;
  for (int i = 0; i < 5; ++i) text += "low\n";
  for (int i = 0; i < 2; ++i) text += "lower\n";
  for (int i = 0; i < 6; ++i) text += "newest\n";
  BpeTrainOptions o;
  o.vocab_size = 256 + 7;
  BpeTokenizer tok = train_bpe(std::string_view(text), o);
  check(merge_bytes(tok) == by_hand, "train_bpe makes the merges found by hand");
  std::printf("encode \"lowest\" -> %s\n", show_ids(tok, tok.encode("lowest")).c_str());
  std::printf("encode \"newer\"  -> %s\n", show_ids(tok, tok.encode("newer")).c_str());
}

void pretokenization(const std::string& stories) {
  std::printf("[pretokenization]\n");
  std::vector<std::string_view> pieces;
  const std::string sample = "Hello world's  2024!!\n\nThey'll see.";
  pretokenize(sample, pieces);
  std::printf("pieces of %s:\n ", show(sample).c_str());
  for (std::string_view p : pieces) std::printf(" %s", show(std::string(p)).c_str());
  std::printf("\n");
  // Train twice on the same 100 KB: once on pre-tokens, once on the whole text as one "word".
  const std::string text = stories.substr(0, 100000);
  BpeTrainOptions o;
  o.vocab_size = 256 + 300;
  BpeTokenizer with = train_bpe(std::string_view(text), o);
  PretokenCounts whole;
  whole.counts[text] = 1;
  BpeTokenizer without = train_bpe(whole, o);
  // A token that glues letters to sentence punctuation ("d." "y,"), or that holds a space
  // anywhere but at its start ("d the"): both are word boundaries that pre-tokenization keeps
  // out of tokens. (The apostrophe is left out: "'s" is a piece by design.)
  auto crosses = [](const std::string& t) {
    bool letter = false, punct = false;
    for (char c : t) {
      letter |= char_class(static_cast<unsigned char>(c)) == CharClass::kLetter;
      punct |= std::string(".,!?;:\"").find(c) != std::string::npos;
    }
    return (letter && punct) || t.find(' ', 1) != std::string::npos;
  };
  int crossing_with = 0, crossing_without = 0;
  std::vector<std::string> examples;
  for (const BpeMerge& m : with.merges()) crossing_with += crosses(with.vocab()[m.result]);
  for (const BpeMerge& m : without.merges()) {
    const std::string& t = without.vocab()[m.result];
    if (crosses(t)) {
      crossing_without++;
      examples.push_back(t);
    }
  }
  // The longest ones make the point best.
  std::stable_sort(examples.begin(), examples.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  examples.resize(std::min<size_t>(examples.size(), 6));
  std::printf("300 merges on 100 KB of TinyStories; tokens that cross a word boundary:\n");
  std::printf("  with pre-tokenization:    %d\n  without pre-tokenization: %d, e.g.", crossing_with, crossing_without);
  for (const std::string& t : examples) std::printf(" %s", show(t).c_str());
  std::printf("\n");
  check(crossing_with == 0, "pre-tokenized training never glues a word to punctuation");
}

void byte_level(const BpeTokenizer& tok) {
  std::printf("[byte_level]\n");
  const std::string text = "Zo\xC3\xAB saw \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x99\x82";  // Zoë saw 日本 🙂
  std::vector<int> ids = tok.encode(text);
  std::printf("text: %s\nids:  %s\n", text.c_str(), show_ids(tok, ids).c_str());
  check(tok.decode(ids) == text, "decode(encode(text)) gives the bytes back");
  std::vector<int> cut(ids.begin(), ids.end() - 1);  // drop the last byte of the emoji
  std::printf("without the last id, as text: %s\n", tok.decode_text(cut).c_str());
  check(tok.decode_text(cut).find("\xEF\xBF\xBD") != std::string::npos, "a cut character shows as U+FFFD");
}

void special_tokens(const BpeTokenizer& tok) {
  std::printf("[special_tokens]\n");
  const std::string text = "The end.<|endoftext|>Once";
  std::vector<int> ids = tok.encode(text);
  std::printf("with <|endoftext|> registered: %s\n", show_ids(tok, ids).c_str());
  check(std::count(ids.begin(), ids.end(), tok.eos_id()) == 1, "<|endoftext|> is one token");
  std::vector<std::string_view> pieces;
  pretokenize(text, pieces);
  std::printf("as ordinary text it would be pieces:");
  for (std::string_view p : pieces) std::printf(" %s", show(std::string(p)).c_str());
  std::printf("\n");
}

void gpt2() {
  std::printf("[gpt2]\n");
  const std::string dir = std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/tokenizer/gpt2/";
  BpeTokenizer tok = BpeTokenizer::load_gpt2(dir + "vocab.json", dir + "merges.txt");
  std::vector<int> ids = tok.encode("Hello world<|endoftext|>");
  std::printf("GPT-2: vocab %d, first merge %s + %s\n", tok.vocab_size(),
              show(tok.vocab()[tok.merges()[0].left]).c_str(), show(tok.vocab()[tok.merges()[0].right]).c_str());
  std::printf("\"Hello world<|endoftext|>\" -> %s\n", show_ids(tok, ids).c_str());
  check(ids == std::vector<int>{15496, 995, 50256}, "GPT-2's ids for Hello world<|endoftext|>");
}

void timings(const std::string& stories) {
  // Timings vary from run to run: the lesson text does not quote this section.
  std::printf("[timings]\n");
  struct Run {
    const char* name;
    std::string text;
    int vocab_size;
  };
  for (const Run& r :
       {Run{"130 KB, vocab 500", stories.substr(0, 130000), 500}, Run{"2 MiB, vocab 8192", stories, 8192}}) {
    PretokenCounts counts;
    auto t0 = std::chrono::steady_clock::now();
    count_pretokens(r.text, {"<|endoftext|>"}, counts);
    const double t_count = seconds_of(t0);
    BpeTrainOptions o;
    o.vocab_size = r.vocab_size;
    o.special_tokens = {"<|endoftext|>"};
    t0 = std::chrono::steady_clock::now();
    BpeTokenizer fast = train_bpe(counts, o);
    const double t_fast = seconds_of(t0);
    t0 = std::chrono::steady_clock::now();
    auto naive = train_bpe_naive(counts, r.vocab_size - 257);
    const double t_naive = seconds_of(t0);
    std::printf("%-18s counting %.3f s | merges: incremental %.3f s, naive %.3f s (%.0fx)\n", r.name, t_count, t_fast,
                t_naive, t_naive / t_fast);
    check(naive == merge_bytes(fast), "naive and incremental make the same merges");
  }
}

}  // namespace

int main() {
  const std::string stories = read_corpus("tinystories.txt");
  if (stories.empty()) {
    std::fprintf(stderr, "lesson_11: tinystories.txt not found under data/ or ../shared/data/\n");
    return 1;
  }
  worked_example();
  pretokenization(stories);
  BpeTrainOptions o;
  o.vocab_size = 1024;
  o.special_tokens = {"<|endoftext|>"};
  const BpeTokenizer tok = train_bpe(std::string_view(stories).substr(0, 500000), o);
  byte_level(tok);
  special_tokens(tok);
  gpt2();
  timings(stories);
  std::printf("[result]\n%s\n", failures ? "SOME CHECKS FAILED" : "all checks passed");
  return failures ? 1 : 0;
}
