// Instruction data from TinyStories: the recipe and the format are in instruct.h.
#include "train/instruct.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include "common/file_io.h"

namespace foundry {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// Words too common to make an instruction checkable ("uses the words they, were and that").
const std::unordered_set<std::string>& stop_words() {
  static const std::unordered_set<std::string> s = {
      "that",  "with",   "they",  "were",    "there", "have",  "said",    "from",    "then",  "when",   "what",
      "this",  "very",   "their", "them",    "went",  "into",  "your",    "because", "didn",  "could",  "would",
      "will",  "some",   "also",  "just",    "like",  "about", "after",   "again",   "been",  "came",   "come",
      "does",  "each",   "even",  "every",   "here",  "know",  "made",    "make",    "many",  "more",   "much",
      "must",  "only",   "other", "over",    "said",  "says",  "should",  "still",   "such",  "than",   "these",
      "thing", "things", "those", "through", "upon",  "want",  "wanted",  "well",    "where", "which",  "while",
      "who",   "why",    "wasn",  "were",    "didn",  "don",   "can't",   "once",    "time",  "little", "day",
      "one",   "looked", "felt",  "saw",     "asked", "going", "started", "away",    "back",  "down",   "they're"};
  return s;
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Ends of sentences: just after '.', '!' or '?' (and a closing quote), or at a newline.
std::vector<size_t> sentence_ends(const std::string& s) {
  std::vector<size_t> ends;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.' || s[i] == '!' || s[i] == '?') {
      size_t e = i + 1;
      if (e < s.size() && s[e] == '"') ++e;
      if (e == s.size() || s[e] == ' ' || s[e] == '\n') ends.push_back(e);
    }
  }
  return ends;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \n\t\r"), b = s.find_last_not_of(" \n\t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// The longest prefix of whole sentences that fits `limit` characters (at least one sentence).
std::string sentences_upto(const std::string& s, size_t limit) {
  size_t cut = 0;
  for (size_t e : sentence_ends(s)) {
    if (e <= limit || cut == 0) cut = e;
    if (e > limit) break;
  }
  return trim(cut ? s.substr(0, cut) : s.substr(0, limit));
}

// Lower-case words of 4+ letters in the text, not stop words, in order of first appearance.
std::vector<std::string> content_words(const std::string& text) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_letter(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && is_letter(text[j])) ++j;
    std::string w = text.substr(i, j - i);
    bool lower = std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    if (lower && w.size() >= 4 && !stop_words().count(w) && seen.insert(w).second) out.push_back(w);
    i = j;
  }
  return out;
}

// "girl named Mia" / "boy named Tim": (gender, name), or empty names.
std::pair<std::string, std::string> named_character(const std::string& text) {
  for (const char* who : {"girl", "boy"}) {
    const std::string key = std::string(who) + " named ";
    size_t at = text.find(key);
    if (at == std::string::npos) continue;
    size_t b = at + key.size(), e = b;
    while (e < text.size() && is_letter(text[e])) ++e;
    std::string name = text.substr(b, e - b);
    if (name.size() >= 2 && name[0] >= 'A' && name[0] <= 'Z') return {who, name};
  }
  return {"", ""};
}

std::string words_instruction(const std::vector<std::string>& w) {
  return "Write a story that uses the words " + w[0] + ", " + w[1] + " and " + w[2] + ".";
}

// Words that more than one story opening in twenty uses (measured on the bundled sample): "a
// little girl named Lily loved to play with her toys in the park" would satisfy an instruction
// that asks for them without reading it. The words_opening recipe does not ask for them.
const std::unordered_set<std::string>& common_opening_words() {
  static const std::unordered_set<std::string> s = {"named",   "girl",    "boy",   "loved", "play",   "liked",
                                                    "friends", "playing", "park",  "lived", "called", "outside",
                                                    "around",  "years",   "three", "small", "toys"};
  return s;
}

std::vector<std::string> pick_words(const std::string& answer, std::mt19937_64& rng, bool skip_common = false) {
  std::vector<std::string> pool = content_words(answer);
  if (skip_common)
    pool.erase(std::remove_if(pool.begin(), pool.end(),
                              [](const std::string& w) { return common_opening_words().count(w) > 0; }),
               pool.end());
  if (pool.size() < 3) return {};
  std::vector<std::string> picked;
  for (int k = 0; k < 3; ++k) {
    size_t at = static_cast<size_t>(rng() % pool.size());
    picked.push_back(pool[at]);
    pool.erase(pool.begin() + static_cast<long>(at));
  }
  return picked;
}

// The words sorted by where each first appears (as a whole word) in the answer.
std::vector<std::string> in_answer_order(std::vector<std::string> w, const std::string& answer) {
  const std::vector<std::string> seq = words_of(answer);
  auto first = [&](const std::string& x) { return std::find(seq.begin(), seq.end(), x) - seq.begin(); };
  std::stable_sort(w.begin(), w.end(), [&](const std::string& a, const std::string& b) { return first(a) < first(b); });
  return w;
}

// A words example's answer with options.words_opening = n > 0: the story's first n sentences,
// extended until they hold three content words to choose from; the whole answer when no opening
// within kAnswerChars does.
std::string words_answer(const std::string& story, const std::string& answer, int n) {
  if (n <= 0) return answer;
  const std::vector<size_t> ends = sentence_ends(story);
  for (size_t k = static_cast<size_t>(n) - 1; k < ends.size() && ends[k] <= kAnswerChars; ++k) {
    std::string opening = trim(story.substr(0, ends[k]));
    std::vector<std::string> pool = content_words(opening);
    const long usable = std::count_if(pool.begin(), pool.end(),
                                      [](const std::string& w) { return common_opening_words().count(w) == 0; });
    if (usable >= 3) return opening;
  }
  return answer;
}

bool has_word(const std::vector<std::string>& words, const std::string& w) {
  std::string lw = w;
  std::transform(lw.begin(), lw.end(), lw.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::find(words.begin(), words.end(), lw) != words.end();
}

}  // namespace

const std::vector<std::string>& instruct_kinds() {
  static const std::vector<std::string> k = {"words", "name", "continue", "two_turn"};
  return k;
}

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_letter(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    std::string w;
    while (j < text.size() && is_letter(text[j])) w += static_cast<char>(std::tolower((unsigned char)text[j++]));
    out.push_back(w);
    i = j;
  }
  return out;
}

namespace {

// The finished stories (documents ending in the separator, without it) and the index of the
// first test story. Documents are cut exactly as `foundry prepare` cuts them (a tail after the
// last separator counts as a document), so the test split is prepare's validation split.
std::vector<std::string> cut_stories(const std::string& text, const InstructOptions& options, long& first_test) {
  if (options.separator.empty()) throw std::invalid_argument("make_instruct: the separator is empty");
  std::vector<std::string> docs;
  size_t begin = 0;
  for (size_t at = text.find(options.separator); at != std::string::npos; at = text.find(options.separator, begin)) {
    docs.push_back(text.substr(begin, at - begin));
    begin = at + options.separator.size();
  }
  const bool tail = begin < text.size() && !docs.empty();
  const long n = static_cast<long>(docs.size()) + (tail ? 1 : 0);
  if (docs.size() < 2)
    throw std::invalid_argument("make_instruct: the text holds " + std::to_string(docs.size()) +
                                " stories ending in \"" + options.separator +
                                "\"; at least 2 are needed (one to train, one to test)");
  const long n_val = std::min(n - 1, std::max(1L, std::lround(options.val_fraction * n)));
  first_test = n - n_val;
  return docs;
}

}  // namespace

std::string held_out_stories(const std::string& text, const InstructOptions& options) {
  long first_test = 0;
  std::vector<std::string> docs = cut_stories(text, options, first_test);
  std::string out;
  for (long d = first_test; d < static_cast<long>(docs.size()); ++d) out += docs[d] + options.separator;
  return out;
}

std::vector<InstructExample> make_instruct(const std::string& text, const InstructOptions& options) {
  long first_test = 0;
  const std::vector<std::string> docs = cut_stories(text, options, first_test);

  std::vector<InstructExample> out;
  std::unordered_set<std::string> window_answers;  // words_windows: the answers so far, to skip repeats
  for (long d = 0; d < static_cast<long>(docs.size()); ++d) {
    const std::string split = d < first_test ? "train" : "test";
    const std::string story = trim(docs[d]);
    if (story.empty()) continue;
    std::mt19937_64 rng(options.seed * 1000003ULL + static_cast<uint64_t>(d));
    const std::string answer = sentences_upto(story, kAnswerChars);
    const std::string base = split + "-" + std::to_string(d) + "-";

    const std::string wanswer = words_answer(story, answer, options.words_opening);
    const bool opening = options.words_opening > 0;
    std::vector<std::string> w = pick_words(wanswer, rng, opening);
    const bool train = split == "train";
    if (!w.empty()) {
      if ((train && options.words_in_order) || opening) w = in_answer_order(w, wanswer);
      out.push_back(
          {base + "words", "words", split, {{"user", words_instruction(w)}, {"assistant", wanswer}}, w, "", ""});
    }
    // Extra words examples of the same answer, from a generator of their own.
    std::mt19937_64 extra_rng(options.seed * 1000003ULL + static_cast<uint64_t>(d) + 0x9E3779B97F4A7C15ULL);
    for (int k = 2; train && !w.empty() && k <= options.words_per_story; ++k) {
      std::vector<std::string> wk = pick_words(wanswer, extra_rng, opening);
      if (options.words_in_order || opening) wk = in_answer_order(wk, wanswer);
      out.push_back({base + "words" + std::to_string(k),
                     "words",
                     split,
                     {{"user", words_instruction(wk)}, {"assistant", wanswer}},
                     wk,
                     "",
                     ""});
    }

    // Every window of n consecutive sentences of a training story, as a words answer of its own.
    if (train && options.words_windows > 0) {
      std::mt19937_64 window_rng(options.seed * 1000003ULL + static_cast<uint64_t>(d) + 0xD1B54A32D192ED03ULL);
      if (!w.empty()) window_answers.insert(wanswer);
      const std::vector<size_t> ends = sentence_ends(story);
      const size_t n = static_cast<size_t>(options.words_windows);
      for (size_t s = 0; s + n <= ends.size(); ++s) {
        const size_t from = s == 0 ? 0 : ends[s - 1];
        const std::string window = trim(story.substr(from, ends[s + n - 1] - from));
        if (window.size() > kAnswerChars || !window_answers.insert(window).second) continue;
        std::vector<std::string> ww = pick_words(window, window_rng, true);
        if (ww.empty()) continue;
        ww = in_answer_order(ww, window);
        out.push_back({base + "window" + std::to_string(s + 1),
                       "words",
                       split,
                       {{"user", words_instruction(ww)}, {"assistant", window}},
                       ww,
                       "",
                       ""});
      }
    }

    auto [who, name] = named_character(answer);
    if (!name.empty())
      out.push_back({base + "name",
                     "name",
                     split,
                     {{"user", "Write a story about a " + who + " named " + name + "."}, {"assistant", answer}},
                     {},
                     name,
                     ""});

    const std::vector<size_t> ends = sentence_ends(story);
    if (ends.size() >= 3) {
      const std::string prompt = trim(story.substr(0, ends[0]));
      const std::string rest = sentences_upto(trim(story.substr(ends[0])), kAnswerChars);
      InstructExample c{base + "continue",
                        "continue",
                        split,
                        {{"user", "Continue this story: " + prompt}, {"assistant", rest}},
                        {},
                        "",
                        prompt};
      // Kept only when the story's own continuation passes the check (it shares a word with the start).
      if (!prompt.empty() && !rest.empty() && satisfies(c, rest)) out.push_back(std::move(c));
    }

    // Two turns: this story's name turn, then words from the next story of the same split.
    const long next = d + 1;
    const bool same_split = next < static_cast<long>(docs.size()) && (next < first_test) == (d < first_test);
    if (!name.empty() && same_split) {
      const std::string first = sentences_upto(story, kAnswerChars / 2);
      const std::string next_story = trim(docs[next]);
      const std::string second =
          opening ? words_answer(next_story, sentences_upto(next_story, kAnswerChars / 2), options.words_opening)
                  : sentences_upto(next_story, kAnswerChars / 2);
      std::vector<std::string> w2 = pick_words(second, rng, opening);
      if (!w2.empty() && ((split == "train" && options.words_in_order) || opening)) w2 = in_answer_order(w2, second);
      if (!w2.empty())
        out.push_back(
            {base + "two_turn",
             "two_turn",
             split,
             {{"user", "Write a story about a " + who + " named " + name + "."},
              {"assistant", first},
              {"user", "Now write another story that uses the words " + w2[0] + ", " + w2[1] + " and " + w2[2] + "."},
              {"assistant", second}},
             w2,
             "",
             ""});
    }
  }
  return out;
}

bool satisfies(const InstructExample& ex, const std::string& answer) {
  const std::vector<std::string> got = words_of(answer);
  if (ex.kind == "words" || ex.kind == "two_turn") {
    for (const std::string& w : ex.words)
      if (!has_word(got, w)) return false;
    return !ex.words.empty();
  }
  if (ex.kind == "name") return !ex.name.empty() && has_word(got, ex.name);
  if (ex.kind == "continue") {
    if (got.empty()) return false;
    const std::string a = trim(answer), p = trim(ex.prompt);
    if (a.compare(0, p.size(), p) == 0) return false;  // repeating the given text is not continuing it
    // On the story: a word of 3+ letters of the given text that is not a function word comes back
    // (a name, "cat", "ball").
    static const std::unordered_set<std::string> short_stop = {
        "the", "and", "was", "her", "his", "she", "him", "but", "you",  "for",  "had",   "not",  "all",  "are", "one",
        "day", "saw", "big", "can", "did", "get", "got", "has", "its",  "let",  "our",   "out",  "see",  "who", "too",
        "two", "yes", "off", "now", "new", "old", "way", "how", "they", "then", "there", "once", "upon", "time"};
    for (const std::string& w : words_of(p))
      if (w.size() >= 3 && !short_stop.count(w) && !stop_words().count(w) && has_word(got, w)) return true;
    return false;
  }
  return false;
}

std::string instruct_to_jsonl(const std::vector<InstructExample>& examples) {
  std::string out;
  for (const InstructExample& ex : examples) {
    ordered_json j;
    j["id"] = ex.id;
    j["kind"] = ex.kind;
    j["split"] = ex.split;
    j["messages"] = ordered_json::array();
    for (const ChatMessage& m : ex.messages) j["messages"].push_back({{"role", m.role}, {"content", m.content}});
    ordered_json check = ordered_json::object();
    if (!ex.words.empty()) check["words"] = ex.words;
    if (!ex.name.empty()) check["name"] = ex.name;
    if (!ex.prompt.empty()) check["prompt"] = ex.prompt;
    j["check"] = check;
    out += j.dump(-1, ' ', false, json::error_handler_t::strict) + "\n";
  }
  return out;
}

namespace {

std::string field_string(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string())
    throw std::runtime_error(where + ": \"" + key + "\" is missing or not a string");
  return j[key].get<std::string>();
}

}  // namespace

std::vector<InstructExample> read_instruct_jsonl(const std::string& text, const std::string& origin) {
  std::vector<InstructExample> out;
  size_t begin = 0, line_no = 0;
  std::set<std::string> ids;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    const std::string where = origin + " line " + std::to_string(line_no);
    if (end - begin > kMaxInstructLine)
      throw std::runtime_error(where + ": " + std::to_string(end - begin) + " bytes, more than the limit of " +
                               std::to_string(kMaxInstructLine));
    const std::string line = trim(text.substr(begin, end - begin));
    begin = end + 1;
    if (line.empty()) continue;
    if (out.size() >= kMaxInstructExamples)
      throw std::runtime_error(where + ": more than " + std::to_string(kMaxInstructExamples) + " examples");
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw std::runtime_error(where + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    if (!j.is_object()) throw std::runtime_error(where + ": expected a JSON object {\"messages\": [...], ...}");
    InstructExample ex;
    ex.id = j.contains("id") ? field_string(j, "id", where) : "line-" + std::to_string(line_no);
    if (!ids.insert(ex.id).second) throw std::runtime_error(where + ": id \"" + ex.id + "\" appears twice");
    ex.kind = j.contains("kind") ? field_string(j, "kind", where) : "chat";
    ex.split = j.contains("split") ? field_string(j, "split", where) : "train";
    if (ex.split != "train" && ex.split != "test")
      throw std::runtime_error(where + ": split \"" + ex.split + "\" is not train or test");
    if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
      throw std::runtime_error(where + ": \"messages\" is missing, not an array or empty");
    for (size_t k = 0; k < j["messages"].size(); ++k) {
      const json& m = j["messages"][k];
      const std::string mw = where + ", message " + std::to_string(k);
      if (!m.is_object()) throw std::runtime_error(mw + ": expected an object {\"role\": ..., \"content\": ...}");
      ChatMessage msg{field_string(m, "role", mw), field_string(m, "content", mw)};
      if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
        throw std::runtime_error(mw + ": role \"" + msg.role + "\" is not one of system, user, assistant");
      ex.messages.push_back(std::move(msg));
    }
    if (ex.messages.back().role != "assistant")
      throw std::runtime_error(where + ": the last message is \"" + ex.messages.back().role +
                               "\"; an example ends with the assistant's answer");
    if (j.contains("check")) {
      const json& c = j["check"];
      if (!c.is_object()) throw std::runtime_error(where + ": \"check\" is not an object");
      if (c.contains("words")) {
        if (!c["words"].is_array()) throw std::runtime_error(where + ": check.words is not an array of strings");
        for (const json& w : c["words"]) {
          if (!w.is_string() || w.get<std::string>().empty())
            throw std::runtime_error(where + ": check.words holds something other than a non-empty string");
          ex.words.push_back(w.get<std::string>());
        }
      }
      if (c.contains("name")) ex.name = field_string(c, "name", where + ", check");
      if (c.contains("prompt")) ex.prompt = field_string(c, "prompt", where + ", check");
    }
    const bool known = std::find(instruct_kinds().begin(), instruct_kinds().end(), ex.kind) != instruct_kinds().end();
    if (known && (((ex.kind == "words" || ex.kind == "two_turn") && ex.words.empty()) ||
                  (ex.kind == "name" && ex.name.empty()) || (ex.kind == "continue" && ex.prompt.empty())))
      throw std::runtime_error(where + ": kind \"" + ex.kind + "\" needs its check (words, name or prompt)");
    out.push_back(std::move(ex));
  }
  if (out.empty()) throw std::runtime_error(origin + ": no examples (an empty file?)");
  return out;
}

std::vector<InstructExample> load_instruct(const std::string& path) {
  return read_instruct_jsonl(read_file(path, "instruction data (JSONL)"), path);
}

}  // namespace foundry
