// Writing a trace as JSON by hand: the schema is small and fixed, and the library itself does
// not depend on a JSON library.
#include "qkv/explain/render_json.hpp"

#include <cmath>
#include <cstdio>

#include "format.hpp"

namespace qkv::explain {
namespace {

// JSON has no infinity: -inf (a hidden key's masked score) is written null.
std::string number(double v) {
  return detail::shortest(v);
}

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", c);
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string rows(const matrix& m) {
  std::string out = "[";
  for (int64_t i = 0; i < m.rows; ++i) {
    out += i ? ", [" : "[";
    for (int64_t j = 0; j < m.cols; ++j) out += (j ? ", " : "") + number(m(i, j));
    out += "]";
  }
  return out + "]";
}

std::string steps(const attention_trace& t, const head_trace& h) {
  std::string out = "{";
  if (!t.x.empty()) out += "\"X\": " + rows(t.x) + ", ";
  out += "\"Q\": " + rows(h.q) + ", \"K\": " + rows(h.k) + ", \"V\": " + rows(h.v) +
         ", \"scores\": " + rows(h.scores) + ", \"scaled\": " + rows(h.scaled);
  if (t.causal) out += ", \"masked\": " + rows(h.masked);
  out += ", \"weights\": " + rows(h.weights) + ", \"output\": " + rows(h.output) + "}";
  return out;
}

std::string summary(const attention_trace& t, const head_trace& h) {
  std::string out = "[";
  for (int64_t i = 0; i < h.weights.rows; ++i) {
    const int64_t j = detail::most_attended_key(h.weights, i);
    out += (i ? ", " : "") + std::string("{\"query\": ") +
           quoted(t.tokens[static_cast<size_t>(i)]) +
           ", \"key\": " + quoted(t.tokens[static_cast<size_t>(j)]) +
           ", \"weight\": " + number(h.weights(i, j)) + "}";
  }
  return out + "]";
}

}  // namespace

std::string render_json(const attention_trace& t) {
  std::string out = "{\"title\": " + quoted(t.title) + ", \"tokens\": [";
  for (size_t i = 0; i < t.tokens.size(); ++i) out += (i ? ", " : "") + quoted(t.tokens[i]);
  out += "], \"scale\": " + number(t.scale) + ", \"causal\": " + (t.causal ? "true" : "false");
  out += ", \"steps\": " + steps(t, t.heads.front());
  out += ", \"summary\": " + summary(t, t.heads.front());
  if (t.heads.size() > 1) {
    out += ", \"heads\": [";
    for (size_t h = 0; h < t.heads.size(); ++h)
      out += (h ? ", " : "") + std::string("{\"steps\": ") + steps(t, t.heads[h]) +
             ", \"summary\": " + summary(t, t.heads[h]) + "}";
    out += "]";
  }
  return out + "}\n";
}

}  // namespace qkv::explain
