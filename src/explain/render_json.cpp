// Writing attention as JSON by hand: the schema is small and fixed (docs/explain_json.md), and
// the library itself does not depend on a JSON library.
#include "qkv/explain/render_json.hpp"

#include <cmath>
#include <cstdio>

#include "format.hpp"
#include "qkv/error.hpp"

namespace qkv::explain {
namespace {

std::string number(double v) {
  if (!std::isfinite(v))
    throw error("explain",
                "a value is not finite (" + std::to_string(v) + "); JSON cannot spell it");
  return detail::shortest(v);
}

// A JSON string of the token's own bytes: valid UTF-8 is kept as it is, quotes, backslashes and
// control characters are escaped, and a byte that is not part of valid UTF-8 (one byte of a
// character split across tokens) becomes U+FFFD; "ids" keeps the exact token.
std::string quoted(std::string_view text) {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "\"" + a temporary string.
  std::string out = "\"";
  out +=
      detail::replace_bytes(text, [](unsigned char byte, bool valid) -> std::optional<std::string> {
        if (!valid) return "\\ufffd";
        if (byte == '"' || byte == '\\') return std::string{'\\', char(byte)};
        if (byte >= 0x20) return std::nullopt;
        char escape[8];
        std::snprintf(escape, sizeof escape, "\\u%04x", byte);
        return escape;
      });
  out += '"';
  return out;
}

std::string rows(const matrix& m, const auto& cell) {
  std::string out = "[";
  for (int64_t i = 0; i < m.rows; ++i) {
    out += i ? ", [" : "[";
    for (int64_t j = 0; j < m.cols; ++j) out += (j ? ", " : "") + cell(i, j);
    out += "]";
  }
  return out + "]";
}
std::string rows(const matrix& m) {
  return rows(m, [&](int64_t i, int64_t j) { return number(m(i, j)); });
}

// [{"query": i, "key": j, "weight": w}]: each row's most attended column.
std::string most_attended(const matrix& weights) {
  std::string out = "[";
  for (int64_t i = 0; i < weights.rows; ++i) {
    const int64_t j = detail::most_attended_key(weights, i);
    out += (i ? ", " : "") + std::string("{\"query\": ") + std::to_string(i) +
           ", \"key\": " + std::to_string(j) + ", \"weight\": " + number(weights(i, j)) + "}";
  }
  return out + "]";
}

std::string steps(const head_trace& h) {
  return "{\"Q\": " + rows(h.q) + ", \"K\": " + rows(h.k) + ", \"V\": " + rows(h.v) +
         ", \"scores\": " + rows(h.scores) + ", \"scaled\": " + rows(h.scaled) + ", \"masked\": " +
         rows(h.masked,
              [&](int64_t i, int64_t j) {
                return std::string(detail::is_masked(h, i, j) ? "true" : "false");
              }) +
         ", \"output\": " + rows(h.output) + "}";
}

std::string head(const attention_map& map, const map_head& h) {
  std::string out = "{\"layer\": " + std::to_string(h.layer) +
                    ", \"head\": " + std::to_string(h.head) +
                    ", \"weights\": " + rows(h.steps.weights) +
                    ", \"most_attended\": " + most_attended(h.steps.weights);
  if (!map.words.empty()) {
    const matrix words = aggregate_words(h.steps.weights, map.words);
    out +=
        ", \"word_weights\": " + rows(words) + ", \"word_most_attended\": " + most_attended(words);
  }
  if (!h.steps.q.empty()) out += ", \"steps\": " + steps(h.steps);
  return out + "}";
}

}  // namespace

std::string render_json(const attention_map& map) {
  std::string out = "{\"schema_version\": " + std::to_string(json_schema_version) +
                    ", \"title\": " + quoted(map.title) + ", \"tokens\": [";
  for (size_t i = 0; i < map.tokens.size(); ++i) out += (i ? ", " : "") + quoted(map.tokens[i]);
  out += "]";
  if (!map.ids.empty()) {
    out += ", \"ids\": [";
    for (size_t i = 0; i < map.ids.size(); ++i) out += (i ? ", " : "") + std::to_string(map.ids[i]);
    out += "]";
  }
  out += ", \"causal\": " + std::string(map.causal ? "true" : "false") +
         ", \"model\": {\"layers\": " + std::to_string(map.model_layers) +
         ", \"heads\": " + std::to_string(map.model_heads) + "}";
  if (map.scale) out += ", \"scale\": " + number(*map.scale);
  if (!map.x.empty()) out += ", \"X\": " + rows(map.x);
  if (!map.words.empty()) {
    out += ", \"word_rule\": " + quoted(word_rule) + ", \"words\": [";
    for (size_t w = 0; w < map.words.size(); ++w) {
      const word_span& word = map.words[w];
      out += (w ? ", " : "") + std::string("{\"text\": ") + quoted(word.text) +
             ", \"first\": " + std::to_string(word.first) +
             ", \"last\": " + std::to_string(word.last) + "}";
    }
    out += "]";
  }
  out += ", \"heads\": [";
  for (size_t h = 0; h < map.heads.size(); ++h) out += (h ? ", " : "") + head(map, map.heads[h]);
  out += "]";
  if (!map.rollout.empty())
    out += ", \"rollout\": {\"rule\": " + quoted(rollout_rule) +
           ", \"weights\": " + rows(map.rollout) +
           ", \"most_attended\": " + most_attended(map.rollout) +
           (map.words.empty()
                ? ""
                : ", \"word_weights\": " + rows(aggregate_words(map.rollout, map.words))) +
           "}";
  return out + "}\n";
}

std::string render_json(const attention_trace& trace) {
  return render_json(map_of_trace(trace));
}

}  // namespace qkv::explain
