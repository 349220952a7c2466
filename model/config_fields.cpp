#include "model/config_fields.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace foundry {

std::string bounded_text(const std::string& s) {
  const size_t kMaxChars = 60;
  if (s.size() <= kMaxChars) return s;
  // Cut on a UTF-8 character boundary so the message stays valid text.
  size_t cut = kMaxChars;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "... (" + std::to_string(s.size()) + " bytes)";
}

std::string describe_json(const nlohmann::json& v) {
  const size_t kMaxChars = 60;
  switch (v.type()) {
    case nlohmann::json::value_t::array:
      return "an array of " + std::to_string(v.size()) + (v.size() == 1 ? " element" : " elements");
    case nlohmann::json::value_t::object:
      return "an object of " + std::to_string(v.size()) + (v.size() == 1 ? " key" : " keys");
    case nlohmann::json::value_t::string: {
      const std::string& s = v.get_ref<const std::string&>();
      if (s.size() <= kMaxChars) return nlohmann::json(s).dump();
      const std::string cut = bounded_text(s);
      const size_t dots = cut.rfind("... (");
      return nlohmann::json(cut.substr(0, dots)).dump() + cut.substr(dots);
    }
    default:
      return v.dump();  // a number, boolean, null or binary: short and not recursive
  }
}

nlohmann::json parse_json_text(const std::string& text, const std::string& where, int max_depth) {
  // The callback sees every value as it is opened, with its depth; refusing there means a deep
  // nest never becomes a deep tree (whose destructor and dump() would recurse).
  auto limit = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        depth >= max_depth) {
      throw std::invalid_argument(where + ": not valid JSON here: arrays and objects nested deeper than " +
                                  std::to_string(max_depth) + " levels");
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text, limit);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(where + ": not valid JSON: " + e.what());
  }
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(path + ": cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_json_text(text.str(), path);
}

nlohmann::json override_json(const std::string& text) {
  try {
    return parse_json_text(text, "override");
  } catch (const std::invalid_argument&) {
    return text;  // not JSON (or nested absurdly deep): a bare word such as sequential
  }
}

namespace config_detail {

void fail(const std::string& where, const std::string& label, const std::string& value, const std::string& why) {
  throw std::invalid_argument(where + label + " = " + value + ": " + why);
}

std::string number_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

namespace {

bool unbounded_above(const FieldRange& r) { return std::isinf(r.hi); }

std::string limit_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f", v);  // integers: every digit, never 1e+12
  return buf;
}

}  // namespace

bool in_range(double v, const FieldRange& r) {
  // Written so that NaN fails every comparison and is out of range; infinities are out too.
  if (!std::isfinite(v)) return false;
  const bool lo_ok = r.lo_open ? v > r.lo : v >= r.lo;
  const bool hi_ok = unbounded_above(r) || (r.hi_open ? v < r.hi : v <= r.hi);
  return lo_ok && hi_ok;
}

std::string range_message(const FieldRange& r, bool integer) {
  if (integer) {
    // The lower end first, as the messages always said; then the documented upper limit.
    const std::string low = r.lo == 1 ? "a positive integer" : ">= " + limit_text(r.lo);
    return "must be " + low + (unbounded_above(r) ? "" : ", at most " + limit_text(r.hi));
  }
  if (unbounded_above(r)) {
    return r.lo_open ? "must be a finite number > " + number_text(r.lo) : "must be >= " + number_text(r.lo);
  }
  return "must be in " + std::string(r.lo_open ? "(" : "[") + number_text(r.lo) + ", " + number_text(r.hi) +
         (r.hi_open ? ")" : "]");
}

std::string range_text(const FieldRange& r, bool integer) {
  if (integer) {
    if (unbounded_above(r)) return "int >= " + limit_text(r.lo);
    return "int in [" + limit_text(r.lo) + ", " + limit_text(r.hi) + "]";
  }
  if (unbounded_above(r)) return std::string("number ") + (r.lo_open ? "> " : ">= ") + number_text(r.lo);
  return "number in " + std::string(r.lo_open ? "(" : "[") + number_text(r.lo) + ", " + number_text(r.hi) +
         (r.hi_open ? ")" : "]");
}

long double read_integer(const nlohmann::json& v, const FieldRange& r, bool is_unsigned, const std::string& where,
                         const std::string& label) {
  if (!v.is_number_integer()) fail(where, label, describe_json(v), "must be an integer");
  // Both JSON integer kinds convert to long double exactly (64-bit mantissa), so the comparison
  // below sees the value as written: 4294967312 stays 4294967312 instead of wrapping to 16.
  const long double x =
      v.is_number_unsigned() ? static_cast<long double>(v.get<uint64_t>()) : static_cast<long double>(v.get<int64_t>());
  if (is_unsigned && x < 0) fail(where, label, v.dump(), "must not be negative");
  const bool lo_ok = x >= static_cast<long double>(r.lo);
  const bool hi_ok = unbounded_above(r) || x <= static_cast<long double>(r.hi);
  if (!lo_ok || !hi_ok) fail(where, label, v.dump(), range_message(r, true));
  return x;
}

}  // namespace config_detail

}  // namespace foundry
