// GPT-2's pre-tokenization pattern, written out by hand (see pretokenize.h for the pattern).
#include "tokenizer/pretokenize.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace foundry {

namespace {

struct Char {
  CharClass cls;
  int len;
};

inline Char char_at(std::string_view text, size_t i) {
  const unsigned char b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) return {char_class(b), 1};  // ASCII without the UTF-8 decoder
  Utf8Char c = decode_utf8(text.data() + i, text.size() - i);
  return {char_class(c.cp), c.len};
}

// Length of the contraction ('s 't 're 've 'm 'll 'd) at text[i] == '\'', or 0. Lower case only,
// as in GPT-2 ("'S" is not one).
size_t contraction_length(std::string_view text, size_t i) {
  const size_t left = text.size() - i;
  if (left >= 2) {
    const char c = text[i + 1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
  }
  if (left >= 3) {
    const char c = text[i + 1], d = text[i + 2];
    if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return 3;
  }
  return 0;
}

}  // namespace

// ANCHOR: pretokenize
void pretokenize(std::string_view text, std::vector<std::string_view>& pieces) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const size_t start = i;
    // 's|'t|'re|'ve|'m|'ll|'d
    if (text[i] == '\'') {
      if (size_t len = contraction_length(text, i)) {
        pieces.push_back(text.substr(start, len));
        i += len;
        continue;
      }
    }
    // ' ?\p{L}+' | ' ?\p{N}+' | ' ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class.
    Char first = char_at(text, i);
    size_t run = i;
    if (text[i] == ' ' && i + 1 < n) {
      Char next = char_at(text, i + 1);
      if (next.cls != CharClass::kSpace) {
        first = next;
        run = i + 1;
      }
    }
    if (first.cls != CharClass::kSpace) {
      size_t j = run + first.len;
      while (j < n) {
        Char c = char_at(text, j);
        if (c.cls != first.cls) break;
        j += c.len;
      }
      pieces.push_back(text.substr(start, j - start));
      i = j;
      continue;
    }
    // '\s+(?!\S)' | '\s+': a run of whitespace. When a non-space follows, the run gives back its
    // last character, which then starts the next piece (" world" keeps its space).
    size_t j = i, last = i;
    while (j < n) {
      Char c = char_at(text, j);
      if (c.cls != CharClass::kSpace) break;
      last = j;
      j += c.len;
    }
    // subtle: a single whitespace character before a non-space cannot give anything back
    // ('\s+(?!\S)' fails, '\s+' takes it alone), so it becomes a piece of its own.
    if (j < n && last > i) j = last;
    pieces.push_back(text.substr(start, j - start));
    i = j;
  }
}
// ANCHOR_END: pretokenize

SpecialMatcher::SpecialMatcher(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {
  for (size_t k = 0; k < tokens_.size(); ++k) {
    if (tokens_[k].empty()) continue;  // an empty special token would match everywhere
    by_length_.push_back(static_cast<int>(k));
    starts_[static_cast<unsigned char>(tokens_[k][0])] = true;
    max_length_ = std::max(max_length_, tokens_[k].size());
  }
  std::stable_sort(by_length_.begin(), by_length_.end(),
                   [&](int a, int b) { return tokens_[a].size() > tokens_[b].size(); });
}

// ANCHOR: special_find
size_t SpecialMatcher::find(std::string_view text, size_t from, int* which) const {
  if (by_length_.empty()) return std::string_view::npos;
  for (size_t p = from; p < text.size(); ++p) {
    if (!starts_[static_cast<unsigned char>(text[p])]) continue;
    for (int k : by_length_) {  // longest first
      const std::string& t = tokens_[k];
      if (text.compare(p, t.size(), t) == 0) {
        *which = k;
        return p;
      }
    }
  }
  return std::string_view::npos;
}
// ANCHOR_END: special_find

size_t SpecialMatcher::unfinished_suffix(std::string_view text) const {
  if (max_length_ == 0) return text.size();
  const size_t lo = text.size() > max_length_ ? text.size() - max_length_ + 1 : 0;
  for (size_t p = lo; p < text.size(); ++p) {
    std::string_view tail = text.substr(p);
    for (int k : by_length_) {
      const std::string& t = tokens_[k];
      if (t.size() > tail.size() && t.compare(0, tail.size(), tail) == 0) return p;
    }
  }
  return text.size();
}

void split_and_pretokenize(std::string_view text, const SpecialMatcher& specials, const PieceSink& sink) {
  std::vector<std::string_view> pieces;
  size_t pos = 0;
  while (pos <= text.size()) {
    int which = -1;
    const size_t hit = specials.find(text, pos, &which);
    const size_t end = hit == std::string_view::npos ? text.size() : hit;
    pieces.clear();
    pretokenize(text.substr(pos, end - pos), pieces);
    for (std::string_view p : pieces) sink(p, -1);
    if (hit == std::string_view::npos) break;
    sink(text.substr(hit, specials.tokens()[which].size()), which);
    pos = hit + specials.tokens()[which].size();
  }
}

size_t split_and_pretokenize_stream(std::istream& in, const SpecialMatcher& specials, const PieceSink& sink,
                                    size_t block_bytes) {
  std::string buffer;  // bytes read but not yet handed out
  std::vector<std::string_view> pieces;
  size_t total = 0;
  bool eof = false;
  while (!eof) {
    const size_t old = buffer.size();
    buffer.resize(old + block_bytes);
    in.read(&buffer[old], static_cast<std::streamsize>(block_bytes));
    const size_t got = static_cast<size_t>(in.gcount());
    buffer.resize(old + got);
    total += got;
    eof = got < block_bytes;
    std::string_view text(buffer);
    // Where the pieces are final. Not inside a character cut by the block end, and not inside
    // what may still become a special token. Within that, every pre-token but the last two is
    // final: a pre-token is decided by the characters up to the start of the next one plus at
    // most two more (the "re" of "'re"), and the last pre-token can still grow.
    size_t end = text.size();
    if (!eof) {
      end -= incomplete_utf8_tail(text);
      end = specials.unfinished_suffix(text.substr(0, end));
    }
    size_t consumed = 0, pos = 0;
    while (pos <= end) {
      int which = -1;
      size_t hit = specials.find(text.substr(0, end), pos, &which);
      const size_t stop = hit == std::string_view::npos ? end : hit;
      pieces.clear();
      pretokenize(text.substr(pos, stop - pos), pieces);
      size_t keep = 0;  // pieces held back for the next block
      if (!eof && hit == std::string_view::npos) keep = std::min<size_t>(2, pieces.size());
      for (size_t k = 0; k + keep < pieces.size(); ++k) sink(pieces[k], -1);
      consumed = keep ? static_cast<size_t>(pieces[pieces.size() - keep].data() - text.data()) : stop;
      if (hit == std::string_view::npos) break;
      sink(text.substr(hit, specials.tokens()[which].size()), which);
      pos = hit + specials.tokens()[which].size();
      consumed = pos;
    }
    buffer.erase(0, consumed);
  }
  return total;
}

}  // namespace foundry
