// UTF-8 and the three Unicode character classes that GPT-2's pre-tokenization needs.
//
// The tokenizer works on bytes, not on characters: a byte-level BPE must take ANY byte string,
// including invalid UTF-8. So decoding here never fails. A byte sequence that is not valid
// UTF-8 is reported as one invalid "character" (its maximal invalid subpart, the same unit that
// the Unicode standard and Python's errors="replace" use), which pre-tokenization treats like
// punctuation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace foundry {

struct CodepointRange {
  uint32_t first, last;  // inclusive
};

// The classes GPT-2's pattern tells apart: \p{L}, \p{N}, \s and everything else.
enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

struct Utf8Char {
  uint32_t cp;  // the code point, or kInvalidCodepoint
  int len;      // bytes consumed, 1..4 (an invalid subpart consumes at least one byte)
};
constexpr uint32_t kInvalidCodepoint = 0xFFFFFFFFu;
constexpr uint32_t kReplacementChar = 0xFFFD;  // what text output shows for invalid bytes

// Decodes the character starting at s[0] with n >= 1 bytes available.
Utf8Char decode_utf8(const char* s, size_t n);

// \p{L}: general categories Lu Ll Lt Lm Lo. \p{N}: Nd Nl No. \s: the White_Space property.
CharClass char_class(uint32_t cp);

void append_utf8(std::string& out, uint32_t cp);
bool is_valid_utf8(std::string_view bytes);
// The bytes as text: each maximal invalid subpart becomes one U+FFFD, so nothing is lost silently
// and nothing throws.
std::string utf8_replace_invalid(std::string_view bytes);
// How many bytes at the end of `bytes` are the start of a character that is not complete yet
// (0..3). A stream reader keeps them for the next block instead of treating them as invalid.
size_t incomplete_utf8_tail(std::string_view bytes);

// Generated tables (tokenizer/unicode_tables.cpp), sorted, non-overlapping.
extern const CodepointRange kLetterRanges[];
extern const int kLetterRanges_count;
extern const CodepointRange kNumberRanges[];
extern const int kNumberRanges_count;

}  // namespace foundry
