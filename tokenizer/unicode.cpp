// UTF-8 decoding that never fails, and the character classes of GPT-2's pattern.
//
// Well-formed UTF-8 (Unicode Table 3-7): the second byte's allowed range depends on the first
// byte, which is what rules out overlong forms, surrogates and code points above U+10FFFF:
//   00..7F                      1 byte
//   C2..DF  80..BF              2 bytes
//   E0      A0..BF  80..BF      3 bytes (E0 80..9F would be overlong)
//   E1..EC  80..BF  80..BF
//   ED      80..9F  80..BF      (ED A0..BF would be a surrogate)
//   EE..EF  80..BF  80..BF
//   F0      90..BF  80..BF 80..BF   4 bytes
//   F1..F3  80..BF  80..BF 80..BF
//   F4      80..8F  80..BF 80..BF   (F4 90.. would pass U+10FFFF)
#include "tokenizer/unicode.h"

#include <algorithm>

namespace foundry {

namespace {

struct LeadInfo {
  int len;           // total length of the sequence, 0 if the byte cannot start one
  uint8_t lo2, hi2;  // allowed range of the second byte
};

LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};  // 80..C1, F5..FF never start a character
}

bool in_ranges(uint32_t cp, const CodepointRange* ranges, int count) {
  // Binary search for the last range whose first <= cp.
  const CodepointRange* end = ranges + count;
  const CodepointRange* it =
      std::upper_bound(ranges, end, cp, [](uint32_t c, const CodepointRange& r) { return c < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

}  // namespace

Utf8Char decode_utf8(const char* s, size_t n) {
  const uint8_t b0 = static_cast<uint8_t>(s[0]);
  LeadInfo info = lead_info(b0);
  if (info.len == 1) return {b0, 1};
  if (info.len == 0) return {kInvalidCodepoint, 1};
  uint32_t cp = b0 & (0xFF >> (info.len + 1));
  for (int k = 1; k < info.len; ++k) {
    if (static_cast<size_t>(k) >= n) return {kInvalidCodepoint, k};  // truncated: the bytes so far
    const uint8_t b = static_cast<uint8_t>(s[k]);
    const uint8_t lo = k == 1 ? info.lo2 : 0x80, hi = k == 1 ? info.hi2 : 0xBF;
    // subtle: the maximal invalid subpart stops BEFORE the offending byte, which may itself
    // start the next character.
    if (b < lo || b > hi) return {kInvalidCodepoint, k};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, info.len};
}

CharClass char_class(uint32_t cp) {
  if (cp < 0x80) {
    // ASCII fast path: most text is ASCII.
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::kSpace;
    return CharClass::kOther;
  }
  if (cp == kInvalidCodepoint) return CharClass::kOther;
  // White_Space (Unicode PropList.txt): a short fixed list, the same in every Unicode version
  // since 6.3.
  if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
      cp == 0x202F || cp == 0x205F || cp == 0x3000)
    return CharClass::kSpace;
  if (in_ranges(cp, kLetterRanges, kLetterRanges_count)) return CharClass::kLetter;
  if (in_ranges(cp, kNumberRanges, kNumberRanges_count)) return CharClass::kNumber;
  return CharClass::kOther;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_valid_utf8(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    Utf8Char c = decode_utf8(bytes.data() + i, bytes.size() - i);
    if (c.cp == kInvalidCodepoint) return false;
    i += c.len;
  }
  return true;
}

std::string utf8_replace_invalid(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    Utf8Char c = decode_utf8(bytes.data() + i, bytes.size() - i);
    if (c.cp == kInvalidCodepoint) {
      append_utf8(out, kReplacementChar);
    } else {
      out.append(bytes.data() + i, c.len);
    }
    i += c.len;
  }
  return out;
}

size_t incomplete_utf8_tail(std::string_view bytes) {
  // A character is at most 4 bytes, so only the last 3 can start an unfinished one.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t start = n - back;
    LeadInfo info = lead_info(static_cast<uint8_t>(bytes[start]));
    if (info.len == 0) continue;                       // a continuation byte (or junk): look further back
    if (info.len <= static_cast<int>(back)) return 0;  // that character is complete (or invalid)
    // The sequence is cut by the end: is what we have a valid beginning?
    Utf8Char c = decode_utf8(bytes.data() + start, back);
    return c.len == static_cast<int>(back) ? back : 0;
  }
  return 0;
}

}  // namespace foundry
