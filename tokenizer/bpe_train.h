// Training a byte-level BPE vocabulary.
//
// The byte-pair idea: start from the 256 bytes; count every pair of adjacent tokens in the
// corpus; make the most frequent pair a new token; repeat until the vocabulary is full.
// Worked example (one merge at a time, counts from the three words "low" x5, "lower" x2,
// "newest" x6, as in Sennrich et al.):
//   pairs: (l,o)=7 (o,w)=7 (w,e)=8 (e,s)=6 (s,t)=6 (e,r)=2 (n,e)=6 (e,w)=6 ...
//   merge 1: (w,e) -> "we" (count 8)   "lower" = l o we r,  "newest" = n e we s t
// The counting runs over pre-tokens (pretokenize.h), so no merge ever crosses a pre-token
// boundary, and each distinct pre-token is counted once with its number of occurrences.
//
// Tie rule: among the pairs with the highest count, the lexicographically greatest pair wins,
// comparing the first token's bytes, then the second's (as the Stanford CS336 reference does,
// so results can be compared with it).
//
// Two trainers give identical merges:
//   train_bpe          counts pairs once, then after each merge updates only the counts of the
//                      words that contained the merged pair (a priority queue picks the best).
//   train_bpe_naive    recounts every pair of every word after every merge: slow, obviously
//                      right, the oracle of the tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/bpe.h"

namespace foundry {

// How often each distinct pre-token occurs in the corpus (special tokens are cut out first
// and never counted).
struct PretokenCounts {
  std::unordered_map<std::string, int64_t> counts;
  uint64_t bytes = 0;  // corpus bytes read
};

void count_pretokens(std::string_view text, const std::vector<std::string>& special_tokens, PretokenCounts& counts);
// Streams the file (bounded memory). Throws std::runtime_error naming the file when it is
// missing or unreadable.
void count_pretokens_file(const std::string& path, const std::vector<std::string>& special_tokens,
                          PretokenCounts& counts);

struct BpeTrainOptions {
  int vocab_size = 0;                       // 256 bytes + merges + special tokens
  std::vector<std::string> special_tokens;  // appended after the merges, in this order
  bool progress = false;                    // a progress line on stderr for long runs
};

// The incremental trainer. Throws std::invalid_argument when vocab_size < 256 + specials or
// when the corpus is empty. Stops early (a smaller vocabulary) when no pair is left to merge.
BpeTokenizer train_bpe(const PretokenCounts& counts, const BpeTrainOptions& options);
BpeTokenizer train_bpe(std::string_view text, const BpeTrainOptions& options);
BpeTokenizer train_bpe_files(const std::vector<std::string>& paths, const BpeTrainOptions& options);

// The oracle: recounts all pairs after every merge. Returns up to num_merges merges as the
// bytes of (left, right).
std::vector<std::pair<std::string, std::string>> train_bpe_naive(const PretokenCounts& counts, int num_merges);

// The merges of a tokenizer as the bytes of (left, right), to compare with the oracle.
std::vector<std::pair<std::string, std::string>> merge_bytes(const BpeTokenizer& tokenizer);

}  // namespace foundry
