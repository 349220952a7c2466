// GPT-2's pre-tokenizer on any bytes (UTF-8 or not), with special tokens: the pieces must cover
// the text exactly, in order, and the streaming version must cut the same pieces.
#include <sstream>

#include "fuzz/fuzz_util.h"
#include "tokenizer/pretokenize.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const foundry::SpecialMatcher specials({"<|endoftext|>", "<|end|>", "<s>"});
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string joined;
  std::vector<std::string> pieces;
  foundry::split_and_pretokenize(text, specials, [&](std::string_view piece, int special) {
    if (piece.empty()) foundry::fuzz::fail("an empty piece");
    if (special >= 0 && piece != specials.tokens()[special]) foundry::fuzz::fail("a special piece is not its token");
    joined.append(piece);
    pieces.emplace_back(piece);
  });
  if (joined != text) foundry::fuzz::fail("the pieces do not cover the text");
  // Small blocks make the stream cut across pieces and special tokens.
  std::istringstream in(text);
  size_t k = 0;
  foundry::split_and_pretokenize_stream(
      in, specials,
      [&](std::string_view piece, int) {
        if (k >= pieces.size() || pieces[k] != piece) foundry::fuzz::fail("the stream cut different pieces");
        ++k;
      },
      7);
  if (k != pieces.size()) foundry::fuzz::fail("the stream cut fewer pieces");
  return 0;
}
