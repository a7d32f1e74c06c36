// JSON from files, parsed strictly: a key given twice in one object is refused. JSON parsers keep
// one of the two silently (nlohmann keeps the last), which would let a second tensor entry, or a
// second "shape", win without a word. Internal to the library (nlohmann is not in its interface).
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "qkv/error.hpp"

namespace qkv::io {

// Throws qkv::error "the key 'K' is given twice" for a duplicated key (the caller names the file);
// other syntax errors come out as nlohmann::json::parse_error, for the caller to word.
inline nlohmann::json parse_json_strictly(std::string_view text) {
  std::vector<std::set<std::string>> keys;  // the keys of each object being parsed
  const auto check = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using ev = nlohmann::json::parse_event_t;
    if (event == ev::object_start) keys.emplace_back();
    if (event == ev::object_end) keys.pop_back();
    if (event == ev::key && !keys.back().insert(parsed.get<std::string>()).second)
      throw error("the key '" + parsed.get<std::string>() + "' is given twice");
    return true;
  };
  return nlohmann::json::parse(text, check);
}

}  // namespace qkv::io
