// The BPE trainers: incremental (fast) and naive (the oracle). See bpe_train.h.
//
// Incremental bookkeeping. A "word" is a distinct pre-token, stored as its current token ids
// with its occurrence count c. For every adjacent pair p we keep
//   count[p]  = sum over words of c * (occurrences of p in the word)
//   where[p]  = the words that contained p when it was last added (may hold stale entries)
// Merging p = (a, b) into n only changes words in where[p]. For each such word we subtract c for
// every pair it had and add c for every pair it has afterwards; pairs away from the merge cancel
// out, so only the pairs that touched a or b change (for "x a b y": (x,a) (a,b) (b,y) become
// (x,n) (n,y)). A max-heap of (count, left bytes, right bytes) picks the next merge; an entry
// whose count is no longer current is skipped when it reaches the top (lazy deletion).
#include "tokenizer/bpe_train.h"

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <queue>
#include <stdexcept>

namespace foundry {

namespace {

inline uint64_t pair_key(int left, int right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
inline int key_left(uint64_t key) { return static_cast<int>(key >> 32); }
inline int key_right(uint64_t key) { return static_cast<int>(key & 0xFFFFFFFFu); }

struct Word {
  std::vector<int> ids;  // current tokens
  int64_t count;         // occurrences in the corpus
};

// Words from the counts, in a fixed order (sorted by bytes) so that runs are reproducible
// whatever the hash map's iteration order.
std::vector<Word> make_words(const PretokenCounts& counts) {
  std::vector<std::pair<std::string, int64_t>> sorted(counts.counts.begin(), counts.counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [text, c] : sorted) {
    if (text.size() < 2) continue;  // a single byte has no pair: it can never take part in a merge
    Word w{std::vector<int>(text.size()), c};
    for (size_t k = 0; k < text.size(); ++k) w.ids[k] = static_cast<uint8_t>(text[k]);
    words.push_back(std::move(w));
  }
  return words;
}

std::vector<std::string> byte_vocab() {
  std::vector<std::string> vocab(256);
  for (int b = 0; b < 256; ++b) vocab[b] = std::string(1, static_cast<char>(b));
  return vocab;
}

// Replaces every (a, b) in ids by n, left to right, in place.
void merge_word(std::vector<int>& ids, int a, int b, int n) {
  size_t w = 0;
  for (size_t k = 0; k < ids.size(); ++k) {
    if (k + 1 < ids.size() && ids[k] == a && ids[k + 1] == b) {
      ids[w++] = n;
      ++k;
    } else {
      ids[w++] = ids[k];
    }
  }
  ids.resize(w);
}

// ANCHOR: tie_rule
// Is pair (a1, b1) with count c1 a worse choice than (a2, b2) with count c2? Higher count
// wins; on a tie the greater bytes of the left token, then of the right token.
bool worse_pair(int64_t c1, int a1, int b1, int64_t c2, int a2, int b2, const std::vector<std::string>& vocab) {
  if (c1 != c2) return c1 < c2;
  if (vocab[a1] != vocab[a2]) return vocab[a1] < vocab[a2];  // std::string compares bytes as unsigned
  return vocab[b1] < vocab[b2];
}
// ANCHOR_END: tie_rule

void check_options(const BpeTrainOptions& options) {
  const int minimum = 256 + static_cast<int>(options.special_tokens.size());
  if (options.vocab_size < minimum)
    throw std::invalid_argument("vocab size " + std::to_string(options.vocab_size) +
                                " is too small: it must be at least " + std::to_string(minimum) + " (256 bytes + " +
                                std::to_string(options.special_tokens.size()) + " special tokens)");
  for (size_t i = 0; i < options.special_tokens.size(); ++i) {
    if (options.special_tokens[i].empty())
      throw std::invalid_argument("special token " + std::to_string(i) + " is empty");
    for (size_t j = 0; j < i; ++j)
      if (options.special_tokens[i] == options.special_tokens[j])
        throw std::invalid_argument("special token \"" + options.special_tokens[i] + "\" is given twice");
  }
}

class Progress {
 public:
  Progress(bool on, int total) : on_(on), total_(total), start_(std::chrono::steady_clock::now()) {}
  void update(int done, int64_t count) {
    // On a terminal, one line rewritten in place every 256 merges; in a log file, a line at
    // every quarter, so the log stays short and readable.
    const int every = tty_ ? 256 : std::max(1, total_ / 4);
    if (!on_ || (done % every != 0 && done != total_)) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "%s[bpe] merge %d/%d  (pair count %lld)  %.1f s%s", tty_ ? "\r" : "", done, total_,
                 static_cast<long long>(count), s, tty_ ? "" : "\n");
    std::fflush(stderr);
  }
  ~Progress() {
    if (on_ && tty_) std::fprintf(stderr, "\n");
  }

 private:
  bool tty_ = isatty(fileno(stderr)) != 0;
  bool on_;
  int total_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

void count_pretokens(std::string_view text, const std::vector<std::string>& special_tokens, PretokenCounts& counts) {
  SpecialMatcher matcher(special_tokens);
  std::string key;
  split_and_pretokenize(text, matcher, [&](std::string_view piece, int special) {
    if (special >= 0) return;  // special tokens are not training text
    key.assign(piece.data(), piece.size());
    ++counts.counts[key];
  });
  counts.bytes += text.size();
}

void count_pretokens_file(const std::string& path, const std::vector<std::string>& special_tokens,
                          PretokenCounts& counts) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the training input (missing or unreadable)");
  SpecialMatcher matcher(special_tokens);
  std::string key;
  counts.bytes += split_and_pretokenize_stream(in, matcher, [&](std::string_view piece, int special) {
    if (special >= 0) return;
    key.assign(piece.data(), piece.size());
    ++counts.counts[key];
  });
  if (in.bad()) throw std::runtime_error(path + ": read error");
}

BpeTokenizer train_bpe(const PretokenCounts& counts, const BpeTrainOptions& options) {
  check_options(options);
  if (counts.counts.empty())
    throw std::invalid_argument("the training corpus is empty (no text outside special tokens)");
  const int num_merges = options.vocab_size - 256 - static_cast<int>(options.special_tokens.size());
  std::vector<std::string> vocab = byte_vocab();
  std::vector<BpeMerge> merges;
  std::vector<Word> words = make_words(counts);

  // ANCHOR: train_count_pairs
  // Count every pair once.
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int>> where;
  for (int w = 0; w < static_cast<int>(words.size()); ++w) {
    const std::vector<int>& ids = words[w].ids;
    for (size_t k = 0; k + 1 < ids.size(); ++k) {
      const uint64_t p = pair_key(ids[k], ids[k + 1]);
      pair_count[p] += words[w].count;
      std::vector<int>& list = where[p];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  }
  struct Entry {
    int64_t count;
    int left, right;
  };
  auto heap_less = [&vocab](const Entry& x, const Entry& y) {
    return worse_pair(x.count, x.left, x.right, y.count, y.left, y.right, vocab);
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(heap_less)> heap(heap_less);
  for (const auto& [p, c] : pair_count) heap.push({c, key_left(p), key_right(p)});
  // ANCHOR_END: train_count_pairs

  std::vector<int> last_seen(words.size(), -1);  // the merge that last visited each word
  std::vector<std::pair<uint64_t, int64_t>> delta;
  Progress progress(options.progress, num_merges);
  while (static_cast<int>(merges.size()) < num_merges) {
    // The best pair whose heap entry is current.
    Entry best{0, 0, 0};
    bool found = false;
    while (!heap.empty()) {
      Entry top = heap.top();
      heap.pop();
      auto it = pair_count.find(pair_key(top.left, top.right));
      if (it != pair_count.end() && it->second == top.count && top.count > 0) {
        best = top;
        found = true;
        break;
      }
    }
    if (!found) break;  // every pre-token is a single token: nothing left to merge
    const int a = best.left, b = best.right, n = static_cast<int>(vocab.size());
    const uint64_t merged = pair_key(a, b);
    vocab.push_back(vocab[a] + vocab[b]);
    merges.push_back({a, b, n});

    // ANCHOR: train_update
    // Update only the words that held (a, b).
    std::vector<int> list = std::move(where[merged]);
    where.erase(merged);
    pair_count.erase(merged);
    const int stamp = static_cast<int>(merges.size());
    for (int w : list) {
      if (last_seen[w] == stamp) continue;  // listed twice
      last_seen[w] = stamp;
      std::vector<int>& ids = words[w].ids;
      const int64_t c = words[w].count;
      delta.clear();
      for (size_t k = 0; k + 1 < ids.size(); ++k) delta.emplace_back(pair_key(ids[k], ids[k + 1]), -c);
      const size_t before = ids.size();
      merge_word(ids, a, b, n);
      if (ids.size() == before) {
        continue;  // stale entry: the pair left this word in an earlier merge
      }
      for (size_t k = 0; k + 1 < ids.size(); ++k) {
        const uint64_t p = pair_key(ids[k], ids[k + 1]);
        delta.emplace_back(p, c);
        if (ids[k] == n || ids[k + 1] == n) {
          std::vector<int>& wl = where[p];
          if (wl.empty() || wl.back() != w) wl.push_back(w);
        }
      }
      // Net change per pair: pairs away from the merge appear once with -c and once with +c.
      std::sort(delta.begin(), delta.end());
      for (size_t i = 0; i < delta.size();) {
        const uint64_t p = delta[i].first;
        int64_t d = 0;
        for (; i < delta.size() && delta[i].first == p; ++i) d += delta[i].second;
        if (d == 0 || p == merged) continue;
        int64_t& cnt = pair_count[p];
        cnt += d;
        if (cnt > 0) heap.push({cnt, key_left(p), key_right(p)});
        // subtle: at zero the pair simply has no current heap entry; its old entries are stale.
      }
    }
    // ANCHOR_END: train_update
    progress.update(static_cast<int>(merges.size()), best.count);
  }

  std::vector<int> special_ids;
  for (const std::string& s : options.special_tokens) {
    special_ids.push_back(static_cast<int>(vocab.size()));
    vocab.push_back(s);
  }
  return BpeTokenizer(std::move(vocab), std::move(merges), std::move(special_ids));
}

BpeTokenizer train_bpe(std::string_view text, const BpeTrainOptions& options) {
  check_options(options);
  PretokenCounts counts;
  count_pretokens(text, options.special_tokens, counts);
  return train_bpe(counts, options);
}

BpeTokenizer train_bpe_files(const std::vector<std::string>& paths, const BpeTrainOptions& options) {
  check_options(options);
  if (paths.empty()) throw std::invalid_argument("no training input given");
  PretokenCounts counts;
  for (const std::string& path : paths) {
    count_pretokens_file(path, options.special_tokens, counts);
    if (options.progress)
      std::fprintf(stderr, "[bpe] counted %s: %.1f MB so far, %zu distinct pre-tokens\n", path.c_str(),
                   counts.bytes / 1e6, counts.counts.size());
  }
  if (counts.counts.empty()) {
    std::string names;
    for (const std::string& p : paths) names += (names.empty() ? "" : ", ") + p;
    throw std::invalid_argument("the training corpus is empty (" + names + ": no text outside special tokens)");
  }
  return train_bpe(counts, options);
}

// ANCHOR: train_bpe_naive
std::vector<std::pair<std::string, std::string>> train_bpe_naive(const PretokenCounts& counts, int num_merges) {
  std::vector<std::string> vocab = byte_vocab();
  std::vector<Word> words = make_words(counts);
  std::vector<std::pair<std::string, std::string>> merges;
  for (int m = 0; m < num_merges; ++m) {
    // Recount every pair of every word.
    std::unordered_map<uint64_t, int64_t> pair_count;
    for (const Word& w : words)
      for (size_t k = 0; k + 1 < w.ids.size(); ++k) pair_count[pair_key(w.ids[k], w.ids[k + 1])] += w.count;
    if (pair_count.empty()) break;
    // The best by count, then by the tie rule.
    uint64_t best = 0;
    int64_t best_count = -1;
    for (const auto& [p, c] : pair_count) {
      if (best_count < 0 ||
          worse_pair(best_count, key_left(best), key_right(best), c, key_left(p), key_right(p), vocab)) {
        best = p;
        best_count = c;
      }
    }
    const int a = key_left(best), b = key_right(best), n = static_cast<int>(vocab.size());
    merges.emplace_back(vocab[a], vocab[b]);
    vocab.push_back(vocab[a] + vocab[b]);
    for (Word& w : words) merge_word(w.ids, a, b, n);
  }
  return merges;
}
// ANCHOR_END: train_bpe_naive

std::vector<std::pair<std::string, std::string>> merge_bytes(const BpeTokenizer& tokenizer) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const BpeMerge& m : tokenizer.merges()) out.emplace_back(tokenizer.vocab()[m.left], tokenizer.vocab()[m.right]);
  return out;
}

}  // namespace foundry
