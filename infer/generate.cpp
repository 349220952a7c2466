#include "infer/generate.h"

#include "infer/batch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace foundry {

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
// How many preceding ids TextStream decodes along with a new one. Both tokenizer families
// need at most one (llama2.c looks back for BOS); a few more cost nothing.
constexpr size_t kStreamWindow = 8;
// Prompt positions per batched prefill pass: enough to read each weight once for many
// positions, few enough that the pass's scratch (a few rows of width F per position) stays small.
constexpr size_t kPrefillChunk = 64;

// Broken weights (NaN or infinity) give NaN logits, and a sampler fed NaN picks an arbitrary
// id: the output would be garbage that looks like success. The test is one pass over V numbers
// per token, written so that it vectorizes: a float is NaN or infinite exactly when its exponent
// bits are all ones, i.e. when its bits without the sign are at least those of infinity, so the
// pass takes the largest such pattern over the row, with no branch and no early exit. Only
// when it fires does a second loop find the first bad logit for the message.
// subtle: a loop of `bad |= !std::isfinite(x)` looks the same but g++ keeps it scalar (a
// compare that sets flags, one logit at a time); on a small model that scalar pass cost about
// 2% of a token. The integer maximum becomes one vector instruction per 16 logits.
void check_finite(const real* logits, int vocab_size, int positions) {
  using Bits = std::conditional_t<sizeof(real) == 8, uint64_t, uint32_t>;  // the bits of one real
  const real infinity = std::numeric_limits<real>::infinity();             // exponent all ones, mantissa 0
  Bits infinity_bits;
  std::memcpy(&infinity_bits, &infinity, sizeof infinity_bits);
  const Bits magnitude = ~Bits(0) >> 1;  // every bit but the sign
  Bits largest = 0;
  for (int v = 0; v < vocab_size; v++) {
    Bits bits;
    std::memcpy(&bits, &logits[v], sizeof bits);
    largest = std::max(largest, Bits(bits & magnitude));
  }
  if (largest < infinity_bits) return;
  for (int v = 0; v < vocab_size; v++) {
    if (!std::isfinite(logits[v])) {
      throw std::runtime_error("generate: the model's output after " + std::to_string(positions) +
                               " positions is not finite (logit " + std::to_string(v) + " = " +
                               std::to_string(logits[v]) + "); the weights hold NaN or infinity, or overflow");
    }
  }
}
}  // namespace

size_t longest_token_bytes(const Tokenizer& tokenizer) {
  size_t longest = 1;
  for (int id = 0; id < tokenizer.vocab_size(); id++) longest = std::max(longest, tokenizer.decode({id}).size());
  return longest;
}

std::vector<int> prompt_ids(const Tokenizer& tokenizer, const std::string& prompt, int max_seq_len) {
  // Refuse a prompt that cannot fit before encoding it: no token is longer than the longest
  // one, so a prompt of N bytes needs at least N / longest tokens. This bounds the work a huge
  // prompt can cause (encoding is not free) to what the context could ever hold.
  const size_t longest = longest_token_bytes(tokenizer);
  if (prompt.size() > static_cast<size_t>(std::max(max_seq_len, 0)) * longest) {
    throw std::invalid_argument("generate: the prompt is " + std::to_string(prompt.size()) + " bytes, so at least " +
                                std::to_string((prompt.size() + longest - 1) / longest) +
                                " tokens (no token is longer than " + std::to_string(longest) +
                                " bytes), but the model's context (max_seq_len) is " + std::to_string(max_seq_len) +
                                "; shorten the prompt");
  }
  std::vector<int> ids;
  if (tokenizer.bos_id() >= 0) {
    ids.push_back(tokenizer.bos_id());  // as run.c: every sequence starts with BOS
  } else if (prompt.empty()) {
    if (tokenizer.eos_id() < 0) {
      throw std::invalid_argument(
          "generate: the prompt is empty and the tokenizer has neither a BOS nor an "
          "end-of-text token to start from; give a prompt");
    }
    ids.push_back(tokenizer.eos_id());  // an empty prompt = the start of a new document
  }
  std::vector<int> text = tokenizer.encode(prompt);
  ids.insert(ids.end(), text.begin(), text.end());
  if ((int)ids.size() > max_seq_len) {
    throw std::invalid_argument("generate: the prompt is " + std::to_string(ids.size()) +
                                " tokens but the model's context (max_seq_len) is " + std::to_string(max_seq_len) +
                                "; shorten the prompt");
  }
  return ids;
}

std::vector<int> stop_ids(const Tokenizer& tokenizer) {
  std::vector<int> stop;
  if (tokenizer.bos_id() >= 0) stop.push_back(tokenizer.bos_id());
  if (tokenizer.eos_id() >= 0 && tokenizer.eos_id() != tokenizer.bos_id()) stop.push_back(tokenizer.eos_id());
  return stop;
}

// ANCHOR: generate
GenerationResult generate(const Model& model, DecodeState& state, Sampler& sampler, const std::vector<int>& prompt,
                          int max_new_tokens, const std::vector<int>& stop, const std::function<void(int)>& on_token) {
  const ModelConfig& c = model.config;
  if (prompt.empty()) throw std::invalid_argument("generate: the prompt has no tokens (it needs at least BOS)");
  if ((int)prompt.size() > c.max_seq_len) {
    throw std::invalid_argument("generate: the prompt is " + std::to_string(prompt.size()) +
                                " tokens but max_seq_len is " + std::to_string(c.max_seq_len));
  }
  GenerationResult result;
  result.stop_reason = "limit";
  reset(state);

  // Prefill: the prompt in batched passes of up to kPrefillChunk positions (infer/batch.h):
  // each block of weights is read once for a whole chunk instead of once per position, with
  // the same numbers as feeding the positions one at a time. Only the last position's logits
  // matter; they land in state.logits, where decode_step would have left them.
  auto start = std::chrono::steady_clock::now();
  {
    BatchState batch = make_batch_state(c, (int)std::min(prompt.size(), kPrefillChunk));
    std::vector<BatchRow> rows;
    for (size_t from = 0; from < prompt.size(); from += kPrefillChunk) {
      const size_t to = std::min(prompt.size(), from + kPrefillChunk);
      rows.clear();
      for (size_t i = from; i < to; i++) rows.push_back({&state.cache, prompt[i], i + 1 == prompt.size()});
      const real* last = forward_batch(batch, model, rows);
      if (to == prompt.size()) std::copy(last, last + c.vocab_size, state.logits.ptr());
    }
  }
  const real* logits = state.logits.ptr();
  check_finite(logits, c.vocab_size, state.cache.length);
  result.prefill_seconds = seconds_since(start);

  start = std::chrono::steady_clock::now();
  for (int n = 0; n < max_new_tokens; n++) {
    int next = sampler.sample(logits, c.vocab_size);
    bool is_stop = false;
    for (int s : stop) is_stop = is_stop || next == s;
    if (is_stop) {
      result.stop_reason = "stop token " + std::to_string(next);
      break;
    }
    result.tokens.push_back(next);
    if (on_token) on_token(next);
    if (n + 1 == max_new_tokens) break;  // the last token needs no forward pass
    if (state.cache.length == c.max_seq_len) {
      result.stop_reason = "context full";
      break;
    }
    logits = decode_step(state, model, next);
    check_finite(logits, c.vocab_size, state.cache.length);
  }
  result.decode_seconds = seconds_since(start);
  return result;
}
// ANCHOR_END: generate

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<int> context)
    : tokenizer_(tokenizer), ids_(std::move(context)) {}

std::string TextStream::push(int id) {
  // Decode only the last few ids: what a new id adds to the text depends on at most its
  // predecessor, and re-decoding the whole sequence would cost O(length) per token.
  size_t from = ids_.size() > kStreamWindow ? ids_.size() - kStreamWindow : 0;
  std::vector<int> window(ids_.begin() + from, ids_.end());
  std::string before = tokenizer_.decode(window);
  window.push_back(id);
  std::string after = tokenizer_.decode(window);
  ids_.push_back(id);
  // subtle: `after` extends `before` for both families; should a tokenizer ever rewrite earlier
  // text, the common prefix is still the right place to cut.
  size_t common = 0;
  while (common < before.size() && common < after.size() && before[common] == after[common]) common++;
  return after.substr(common);
}

}  // namespace foundry
