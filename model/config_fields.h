// Config fields, declared once.
//
// A config struct (ModelConfig, TrainingSection) states each member's type and default value; next
// to it, a list of ConfigField states the member's JSON name, the range it must lie in and one line
// of help. Everything else is generated from that list by the functions below: reading the JSON
// (unknown keys, missing keys, wrong types and out-of-range integers are errors naming the field
// and the value), writing it, checking the ranges of a config built in code, the `--set`
// overrides' typing, the field tables of configs/README.md and the settings that `foundry train`
// prints. A new field is one member plus one ConfigField line.
//
// Untrusted input is never echoed whole: an error shows a value through describe_json, which is
// bounded and not recursive, so a 200 KB nested array costs a short message, not a stack overflow.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace foundry {

// At most about 60 characters describing a JSON value for an error message: a number, boolean or
// null as written, a string quoted and cut short, an array or object by its kind and size only.
std::string describe_json(const nlohmann::json& v);

// `s` cut to at most about 60 bytes (on a UTF-8 boundary) with "... (N bytes)" appended when cut:
// how a message shows a key or a string taken from a file.
std::string bounded_text(const std::string& s);

// Parses JSON text, refusing nesting deeper than `max_depth` while it builds the value (nlohmann
// parses any depth, but copying, comparing and printing the value it builds recurse).
// Throws std::invalid_argument "<where>: not valid JSON: ..." or "... nested deeper than ...".
nlohmann::json parse_json_text(const std::string& text, const std::string& where, int max_depth = 64);

// Reads a JSON file (parse_json_text, so nesting is bounded) into a json value, not validated.
// Throws std::invalid_argument naming the file.
nlohmann::json read_json_file(const std::string& path);

// The values a number may take: [lo, hi], either end open. Integers are checked against it before
// they are converted to the member's type, so nothing is ever truncated.
struct FieldRange {
  double lo, hi;
  bool lo_open = false, hi_open = false;
};

// One field of a config: the declaration everything else is generated from.
template <typename Config>
struct ConfigField {
  using Member = std::variant<int Config::*, long Config::*, uint64_t Config::*, double Config::*, bool Config::*,
                              std::string Config::*>;
  const char* name;  // the JSON key
  Member member;     // where the value lives (its type is the field's type)
  FieldRange range;  // numbers only; ignored for bool and string
  const char* rule;  // a condition involving other fields, checked by validate(): shown in the docs; "" if none
  const char* help;  // one line for configs/README.md
  std::vector<std::string> choices;  // strings only: the accepted values (empty: any)

  ConfigField(const char* name_, Member member_, FieldRange range_, const char* rule_, const char* help_,
              std::vector<std::string> choices_ = std::vector<std::string>())
      : name(name_), member(member_), range(range_), rule(rule_), help(help_), choices(std::move(choices_)) {}
};

// The text of a `--set` value as JSON when it parses as (shallow) JSON, else as a plain string.
nlohmann::json override_json(const std::string& text);

// How the messages of one config name its fields: "training.lr", or "field 'dim'".
struct FieldNaming {
  std::string prefix;  // "training." or "field '"
  std::string suffix;  // ""          or "'"
  std::string label(const std::string& name) const { return prefix + name + suffix; }
};

namespace config_detail {

[[noreturn]] void fail(const std::string& where, const std::string& label, const std::string& value,
                       const std::string& why);
std::string number_text(double v);  // %g
// "must be ..." for a number outside `r` (integers: `integer` true).
std::string range_message(const FieldRange& r, bool integer);
bool in_range(double v, const FieldRange& r);
// Reads an integer JSON value as a long double (exact for every 64-bit integer); throws naming the
// field unless it is an integer, representable as `is_unsigned` demands, and inside `r`.
long double read_integer(const nlohmann::json& v, const FieldRange& r, bool is_unsigned, const std::string& where,
                         const std::string& label);
std::string range_text(const FieldRange& r, bool integer);  // "int in [1, 1024]", "number > 0"

}  // namespace config_detail

// Every field of `c` as a JSON object (whose keys nlohmann keeps sorted).
template <typename Config>
nlohmann::json fields_to_json(const Config& c, const std::vector<ConfigField<Config>>& fields) {
  nlohmann::json j = nlohmann::json::object();
  for (const ConfigField<Config>& f : fields) {
    std::visit([&](auto member) { j[f.name] = c.*member; }, f.member);
  }
  return j;
}

// Reads the fields of `c` from the object `j`. Unknown keys are errors (`unknown` is the message,
// given the key); a missing key is an error when `require_all`, else keeps its default. Types and
// the ranges of integers are checked here; validate_fields checks the rest. `where` starts every
// message ("config.json: ").
template <typename Config>
void fields_from_json(Config& c, const nlohmann::json& j, const std::vector<ConfigField<Config>>& fields,
                      const FieldNaming& naming, const std::string& where, bool require_all,
                      std::string (*unknown)(const std::string& key)) {
  using config_detail::fail;
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const ConfigField<Config>& f : fields) known = known || it.key() == f.name;
    if (!known) throw std::invalid_argument(where + unknown(it.key()));
  }
  for (const ConfigField<Config>& f : fields) {
    const std::string label = naming.label(f.name);
    if (!j.contains(f.name)) {
      if (require_all) throw std::invalid_argument(where + "missing field '" + std::string(f.name) + "'");
      continue;
    }
    const nlohmann::json& v = j.at(f.name);
    std::visit(
        [&](auto member) {
          using T = std::decay_t<decltype(c.*member)>;
          if constexpr (std::is_same_v<T, bool>) {
            if (!v.is_boolean()) fail(where, label, describe_json(v), "must be true or false");
            c.*member = v.get<bool>();
          } else if constexpr (std::is_same_v<T, std::string>) {
            if (!v.is_string()) fail(where, label, describe_json(v), "must be a string");
            c.*member = v.get<std::string>();
          } else if constexpr (std::is_same_v<T, double>) {
            if (!v.is_number()) fail(where, label, describe_json(v), "must be a number");
            c.*member = v.get<double>();
          } else {
            c.*member = static_cast<T>(config_detail::read_integer(v, f.range, std::is_unsigned_v<T>, where, label));
          }
        },
        f.member);
  }
}

// Checks every number of `c` against its declared range and every string against its choices.
// Throws std::invalid_argument "<where><label> = <value>: must be ...".
template <typename Config>
void validate_fields(const Config& c, const std::vector<ConfigField<Config>>& fields, const FieldNaming& naming,
                     const std::string& where) {
  using config_detail::fail;
  for (const ConfigField<Config>& f : fields) {
    std::visit(
        [&](auto member) {
          using T = std::decay_t<decltype(c.*member)>;
          const T& v = c.*member;
          if constexpr (std::is_same_v<T, std::string>) {
            if (f.choices.empty()) return;
            std::string expected;
            bool ok = false;
            for (size_t k = 0; k < f.choices.size(); ++k) {
              ok = ok || v == f.choices[k];
              expected += (k == 0 ? "" : k + 1 == f.choices.size() ? " or " : ", ") + ("\"" + f.choices[k] + "\"");
            }
            if (!ok) fail(where, naming.label(f.name), describe_json(v), "expected " + expected);
          } else if constexpr (std::is_same_v<T, double>) {
            if (!config_detail::in_range(v, f.range)) {
              fail(where, naming.label(f.name), config_detail::number_text(v),
                   config_detail::range_message(f.range, false));
            }
          } else if constexpr (!std::is_same_v<T, bool>) {
            if (!config_detail::in_range(static_cast<double>(v), f.range)) {
              fail(where, naming.label(f.name), std::to_string(v), config_detail::range_message(f.range, true));
            }
          }
        },
        f.member);
  }
}

// The markdown table of configs/README.md for these fields; `defaults` adds a default column.
template <typename Config>
std::string fields_markdown(const std::vector<ConfigField<Config>>& fields, bool defaults) {
  const Config d{};
  std::string out = defaults ? "| field | type, range | default | meaning |\n|---|---|---|---|\n"
                             : "| field | type, range | meaning |\n|---|---|---|\n";
  for (const ConfigField<Config>& f : fields) {
    std::string type, value;
    std::visit(
        [&](auto member) {
          using T = std::decay_t<decltype(d.*member)>;
          if constexpr (std::is_same_v<T, bool>) {
            type = "bool";
            value = d.*member ? "`true`" : "`false`";
          } else if constexpr (std::is_same_v<T, std::string>) {
            for (size_t k = 0; k < f.choices.size(); ++k) {
              type += (k == 0 ? "" : k + 1 == f.choices.size() ? " or " : ", ") + ("`\"" + f.choices[k] + "\"`");
            }
            if (type.empty()) type = "string";
            value = "`\"" + d.*member + "\"`";
          } else if constexpr (std::is_same_v<T, double>) {
            type = config_detail::range_text(f.range, false);
            value = config_detail::number_text(d.*member);
          } else {
            type = config_detail::range_text(f.range, true);
            value = std::to_string(d.*member);
          }
        },
        f.member);
    if (f.rule[0] != '\0') type += ", " + std::string(f.rule);
    out += "| `" + std::string(f.name) + "` | " + type + (defaults ? " | " + value : "") + " | " + f.help + " |\n";
  }
  return out;
}

// "section.name=value" for every field, in declaration order (the settings `foundry train` prints).
template <typename Config>
std::vector<std::string> fields_settings(const Config& c, const std::vector<ConfigField<Config>>& fields,
                                         const std::string& section) {
  std::vector<std::string> items;
  const nlohmann::json j = fields_to_json(c, fields);
  for (const ConfigField<Config>& f : fields) items.push_back(section + "." + f.name + "=" + j.at(f.name).dump());
  return items;
}

// The JSON value of a `--set section.field=text` override for this field: a string field takes
// the text as it is (unless it is a quoted JSON string), any other field parses it as JSON.
// Returns false when no field has this name.
template <typename Config>
bool field_override_value(const std::vector<ConfigField<Config>>& fields, const std::string& name,
                          const std::string& text, nlohmann::json& value) {
  for (const ConfigField<Config>& f : fields) {
    if (name != f.name) continue;
    const bool is_string = std::holds_alternative<std::string Config::*>(f.member);
    value = override_json(text);
    if (is_string && !value.is_string()) value = text;
    return true;
  }
  return false;
}

}  // namespace foundry
