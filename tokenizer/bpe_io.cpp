// BPE files: Hugging Face's tokenizer.json and OpenAI's GPT-2 vocab.json + merges.txt.
//
// Both spell token bytes through GPT-2's byte-to-unicode table, so that every token is printable
// text in a JSON file: the 188 printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
// themselves, and the other 68 bytes (space, control bytes, ...) are moved to U+0100 and up, in
// byte order. That is why a space shows as 'Ġ' (U+0120) and a newline as 'Ċ' (U+010A).
//
// tokenizer.json, the part we write and read:
//   { "version": "1.0",
//     "added_tokens": [ {"id": 8191, "content": "<|endoftext|>", "special": true, ...} ],
//     "normalizer": null,
//     "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true, ...},
//     "decoder": {"type": "ByteLevel", ...},
//     "model": {"type": "BPE", "vocab": {"Ġthe": 262, ...}, "merges": ["Ġ t", "h e", ...], ...} }
// Special tokens are stored as added tokens only (their text is not byte-level spelled).
#include <sys/stat.h>

#include <array>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "common/file_io.h"
#include "tokenizer/bpe.h"
#include "tokenizer/unicode.h"

namespace foundry {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// byte -> the code point GPT-2 shows it as.
std::array<uint32_t, 256> byte_to_codepoint() {
  std::array<uint32_t, 256> table{};
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    table[b] = printable ? static_cast<uint32_t>(b) : next++;
  }
  return table;
}

const std::array<uint32_t, 256>& byte_table() {
  static const std::array<uint32_t, 256> table = byte_to_codepoint();
  return table;
}

// At most `max_bytes` of untrusted text for an error message, marked when cut: a token or key
// in a hostile file may be megabytes long.
std::string excerpt(const std::string& text, size_t max_bytes = 80) {
  if (text.size() <= max_bytes) return text;
  return text.substr(0, max_bytes) + "...(" + std::to_string(text.size()) + " bytes)";
}

}  // namespace

std::string bytes_to_hf(std::string_view bytes) {
  std::string out;
  for (char c : bytes) append_utf8(out, byte_table()[static_cast<uint8_t>(c)]);
  return out;
}

// The inverse of bytes_to_hf; throws (naming `what`) on a character that is not in the table.
std::string hf_to_bytes(const std::string& text, const std::string& what) {
  static const std::unordered_map<uint32_t, uint8_t> inverse = [] {
    std::unordered_map<uint32_t, uint8_t> m;
    for (int b = 0; b < 256; ++b) m[byte_table()[b]] = static_cast<uint8_t>(b);
    return m;
  }();
  std::string out;
  for (size_t i = 0; i < text.size();) {
    Utf8Char c = decode_utf8(text.data() + i, text.size() - i);
    auto it = inverse.find(c.cp);
    if (c.cp == kInvalidCodepoint || it == inverse.end())
      throw std::runtime_error(what + ": \"" + excerpt(text) + "\" is not a byte-level token (character at byte " +
                               std::to_string(i) + " is not in GPT-2's byte-to-unicode table)");
    out += static_cast<char>(it->second);
    i += c.len;
  }
  return out;
}

namespace {

// A token id from the file: an integer in [0, INT_MAX]. Anything else is refused here, before it
// is narrowed to int (a 2^40 id would otherwise wrap) or used to size a table.
int read_id(const json& value, const std::string& what) {
  if (!value.is_number_integer())
    throw std::runtime_error(what + " is not an integer id (got a " + std::string(value.type_name()) + ")");
  if (value.is_number_unsigned() ? value.get<uint64_t>() > static_cast<uint64_t>(INT_MAX)
                                 : (value.get<int64_t>() < 0 || value.get<int64_t>() > INT_MAX))
    throw std::runtime_error(what + " = " + value.dump() + " is not an id in 0.." + std::to_string(INT_MAX));
  return value.get<int>();
}

// Builds the tokenizer from token strings -> ids (byte-level spelled), the merges as pairs of
// token strings, and the added (special) tokens.
BpeTokenizer build(const std::string& origin, const std::unordered_map<std::string, int>& token_ids,
                   const std::vector<std::pair<std::string, std::string>>& merge_pairs,
                   const std::vector<std::pair<int, std::string>>& added) {
  int max_id = -1;
  for (const auto& kv : token_ids) max_id = std::max(max_id, kv.second);
  for (const auto& a : added) max_id = std::max(max_id, a.first);
  if (max_id < 0) throw std::runtime_error(origin + ": the vocabulary is empty");
  // First the checks that need no table indexed by id: the tables below are sized by the largest
  // id, which is only a claim until every id 0..N-1 is known to be used.
  for (const auto& a : added)
    if (a.first < 0) throw std::runtime_error(origin + ": added token \"" + excerpt(a.second) + "\" has a negative id");
  std::vector<std::pair<int, std::string>> token_bytes;  // (id, bytes) of the vocab entries
  token_bytes.reserve(token_ids.size());
  for (const auto& kv : token_ids) {
    if (kv.second < 0) throw std::runtime_error(origin + ": token \"" + excerpt(kv.first) + "\" has a negative id");
    token_bytes.emplace_back(kv.second, hf_to_bytes(kv.first, origin + ": vocab"));
  }
  // subtle: ids must be 0..N-1, so with E entries one id at or past E means some id below E is
  // unused (and one entry claiming id 100,000,000 must not allocate gigabytes of table). That
  // gap is found with a table of E entries and reported as any other gap is.
  const size_t entries = token_ids.size() + added.size();
  if (static_cast<size_t>(max_id) >= entries) {
    std::vector<bool> used(entries, false);
    for (const auto& [id, bytes] : token_bytes)
      if (static_cast<size_t>(id) < entries) used[id] = true;
    for (const auto& a : added)
      if (static_cast<size_t>(a.first) < entries) used[a.first] = true;
    size_t gap = 0;
    while (used[gap]) ++gap;  // exists: at most E - 1 entries have an id below E
    throw std::runtime_error(origin + ": no token has id " + std::to_string(gap) + " (ids must be 0..N-1, but one is " +
                             std::to_string(max_id) + " with " + std::to_string(entries) + " entries)");
  }
  std::vector<std::string> vocab(max_id + 1);
  std::vector<bool> filled(max_id + 1, false);
  std::vector<int> special_ids;
  for (const auto& a : added) {
    if (filled[a.first] && vocab[a.first] != a.second)
      throw std::runtime_error(origin + ": id " + std::to_string(a.first) + " is given to two added tokens");
    vocab[a.first] = a.second;
    filled[a.first] = true;
    special_ids.push_back(a.first);
  }
  std::vector<bool> is_added(max_id + 1, false);
  for (int id : special_ids) is_added[id] = true;
  for (auto& [id, bytes] : token_bytes) {
    if (is_added[id]) continue;  // GPT-2 lists <|endoftext|> in the vocab too; the added entry wins
    if (filled[id]) throw std::runtime_error(origin + ": id " + std::to_string(id) + " is given to two tokens");
    vocab[id] = std::move(bytes);
    filled[id] = true;
  }
  for (int id = 0; id <= max_id; ++id)
    if (!filled[id])
      throw std::runtime_error(origin + ": no token has id " + std::to_string(id) + " (ids must be 0..N-1)");
  std::vector<BpeMerge> merges;
  merges.reserve(merge_pairs.size());
  for (size_t k = 0; k < merge_pairs.size(); ++k) {
    const auto& [a, b] = merge_pairs[k];
    auto ia = token_ids.find(a), ib = token_ids.find(b), ir = token_ids.find(a + b);
    if (ia == token_ids.end() || ib == token_ids.end() || ir == token_ids.end())
      throw std::runtime_error(origin + ": merge " + std::to_string(k) + " (\"" + excerpt(a) + "\" \"" + excerpt(b) +
                               "\") names a token that is not in the vocabulary");
    merges.push_back({ia->second, ib->second, ir->second});
  }
  try {
    return BpeTokenizer(std::move(vocab), std::move(merges), std::move(special_ids));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(origin + ": " + e.what());
  }
}

std::string type_of(const json& j, const char* field) {
  if (!j.contains(field) || j[field].is_null()) return "null";
  const json& v = j[field];
  if (!v.is_object() || !v.contains("type") || !v["type"].is_string()) return "(no \"type\")";
  return v["type"].get<std::string>();
}

}  // namespace

std::string BpeTokenizer::to_hf_json() const {
  // subtle: Hugging Face's vocab maps text -> id, so two ids with the same bytes cannot both be
  // stored. Training can make such a pair (two merges that spell the same bytes differently);
  // we refuse to write a file that would load as a different tokenizer.
  std::vector<bool> is_special(vocab_.size(), false);
  for (int id : special_ids_) is_special[id] = true;
  ordered_json vocab = ordered_json::object();
  for (size_t id = 0; id < vocab_.size(); ++id) {
    if (is_special[id]) continue;
    std::string key = bytes_to_hf(vocab_[id]);
    if (vocab.contains(key))
      throw std::runtime_error("tokenizer.json cannot hold this vocabulary: tokens " + vocab[key].dump() + " and " +
                               std::to_string(id) + " have the same bytes \"" + escape_bytes(vocab_[id]) + "\"");
    vocab[key] = id;
  }
  ordered_json merges = ordered_json::array();
  for (const BpeMerge& m : merges_) merges.push_back(bytes_to_hf(vocab_[m.left]) + " " + bytes_to_hf(vocab_[m.right]));
  ordered_json added = ordered_json::array();
  for (int id : special_ids_) {
    if (!is_valid_utf8(vocab_[id]))
      throw std::runtime_error("tokenizer.json: special token " + std::to_string(id) + " is not valid UTF-8");
    added.push_back({{"id", id},
                     {"content", vocab_[id]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  ordered_json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  ordered_json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = added;
  root["normalizer"] = nullptr;
  root["pre_tokenizer"] = byte_level;
  root["post_processor"] = nullptr;
  root["decoder"] = byte_level;
  root["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", nullptr},
                   {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr},
                   {"fuse_unk", false},
                   {"byte_fallback", false},
                   {"vocab", vocab},
                   {"merges", merges}};
  return root.dump(1) + "\n";
}

void BpeTokenizer::save_json(const std::string& path) const { write_file_atomic(path, to_hf_json()); }

void BpeTokenizer::save_to_dir(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot create directory: " + ec.message());
  save_json((std::filesystem::path(dir) / "tokenizer.json").string());
}

BpeTokenizer BpeTokenizer::from_hf_json(const std::string& json_text, const std::string& origin) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(origin + ": not valid JSON (" + e.what() + ")");
  }
  // A field of an unexpected type (a number where a flag belongs) surfaces as json::type_error
  // from value(); it gets the file name like every other problem.
  try {
    if (!root.is_object() || !root.contains("model") || !root["model"].is_object())
      throw std::runtime_error(origin + ": no \"model\" object; is this a Hugging Face tokenizer.json?");
    const json& model = root["model"];
    const std::string model_type = model.value("type", std::string("(missing)"));
    if (model_type != "BPE")
      throw std::runtime_error(origin + ": model.type is \"" + model_type + "\"; only \"BPE\" is supported");
    // Only the byte-level family: anything that changes the text before BPE would encode
    // differently from what we implement, so it is an error rather than a silent difference.
    if (type_of(root, "normalizer") != "null")
      throw std::runtime_error(origin + ": normalizer \"" + type_of(root, "normalizer") +
                               "\" is not supported (expected null)");
    if (type_of(root, "pre_tokenizer") != "ByteLevel")
      throw std::runtime_error(origin + ": pre_tokenizer \"" + type_of(root, "pre_tokenizer") +
                               "\" is not supported (expected ByteLevel, GPT-2's pattern)");
    const json& pre = root["pre_tokenizer"];
    if (pre.value("add_prefix_space", false))
      throw std::runtime_error(origin + ": pre_tokenizer.add_prefix_space = true is not supported");
    if (!pre.value("use_regex", true))
      throw std::runtime_error(origin + ": pre_tokenizer.use_regex = false is not supported");
    const std::string decoder = type_of(root, "decoder");
    if (decoder != "ByteLevel" && decoder != "null")
      throw std::runtime_error(origin + ": decoder \"" + decoder + "\" is not supported (expected ByteLevel)");
    auto empty_or_null = [&](const char* field) {
      return !model.contains(field) || model[field].is_null() || (model[field].is_string() && model[field] == "");
    };
    if (!empty_or_null("continuing_subword_prefix") || !empty_or_null("end_of_word_suffix"))
      throw std::runtime_error(origin + ": model.continuing_subword_prefix / end_of_word_suffix are not supported");
    if (model.value("byte_fallback", false))
      throw std::runtime_error(origin + ": model.byte_fallback = true is not supported");
    if (model.value("ignore_merges", false))
      throw std::runtime_error(origin + ": model.ignore_merges = true is not supported");
    if (model.contains("dropout") && !model["dropout"].is_null())
      throw std::runtime_error(origin + ": model.dropout is not supported (expected null)");
    if (!model.contains("vocab") || !model["vocab"].is_object())
      throw std::runtime_error(origin + ": model.vocab must be an object {token: id}");
    if (!model.contains("merges") || !model["merges"].is_array())
      throw std::runtime_error(origin + ": model.merges must be an array");

    std::unordered_map<std::string, int> token_ids;
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
      token_ids[it.key()] = read_id(it.value(), origin + ": model.vocab[\"" + excerpt(it.key()) + "\"]");
    }
    std::vector<std::pair<std::string, std::string>> merges;
    const json& jm = model["merges"];
    for (size_t k = 0; k < jm.size(); ++k) {
      // Two spellings exist: "a b" (older files) and ["a", "b"] (newer ones).
      if (jm[k].is_string()) {
        const std::string s = jm[k].get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          throw std::runtime_error(origin + ": model.merges[" + std::to_string(k) + "] = \"" + excerpt(s) +
                                   "\" is not two tokens separated by one space");
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (jm[k].is_array() && jm[k].size() == 2 && jm[k][0].is_string() && jm[k][1].is_string()) {
        merges.emplace_back(jm[k][0].get<std::string>(), jm[k][1].get<std::string>());
      } else {
        throw std::runtime_error(origin + ": model.merges[" + std::to_string(k) +
                                 "] is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
    std::vector<std::pair<int, std::string>> added;
    if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
      for (const json& t : root["added_tokens"]) {
        if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
            !t["content"].is_string())
          throw std::runtime_error(origin +
                                   ": an entry of added_tokens lacks an integer \"id\" or a string \"content\"");
        added.emplace_back(read_id(t["id"], origin + ": added_tokens id"), t["content"].get<std::string>());
      }
    }
    return build(origin, token_ids, merges, added);
  } catch (const json::exception& e) {
    throw std::runtime_error(origin + ": unexpected JSON structure (" + std::string(e.what()) + ")");
  }
}

BpeTokenizer BpeTokenizer::load_json(const std::string& path) { return from_hf_json(read_file(path), path); }

BpeTokenizer BpeTokenizer::load_gpt2(const std::string& vocab_json_path, const std::string& merges_txt_path) {
  json vocab_json;
  try {
    vocab_json = json::parse(read_file(vocab_json_path));
  } catch (const json::parse_error& e) {
    throw std::runtime_error(vocab_json_path + ": not valid JSON (" + e.what() + ")");
  }
  if (!vocab_json.is_object()) throw std::runtime_error(vocab_json_path + ": expected an object {token: id}");
  std::unordered_map<std::string, int> token_ids;
  std::vector<std::pair<int, std::string>> added;
  for (auto it = vocab_json.begin(); it != vocab_json.end(); ++it) {
    const int id = read_id(it.value(), vocab_json_path + ": the id of \"" + excerpt(it.key()) + "\"");
    token_ids[it.key()] = id;
    if (it.key() == "<|endoftext|>") added.emplace_back(id, it.key());
  }
  std::istringstream lines(read_file(merges_txt_path));
  std::vector<std::pair<std::string, std::string>> merges;
  std::string line;
  size_t line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
      throw std::runtime_error(merges_txt_path + ": line " + std::to_string(line_no) +
                               " is not two tokens separated by one space");
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return build(vocab_json_path + " + " + merges_txt_path, token_ids, merges, added);
}

}  // namespace foundry
