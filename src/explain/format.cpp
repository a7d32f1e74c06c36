// Number formatting, the heatmap colour scale and escaping for the explain renderers.
#include "format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

namespace qkv::explain::detail {

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  std::string text = buffer;
  // A value that rounds to zero is printed without its sign.
  if (text[0] == '-' && text.find_first_not_of("-0.") == std::string::npos) text.erase(0, 1);
  return text;
}

std::string shortest(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string percent(double weight) {
  return fixed(100.0 * weight, percent_decimals) + "%";
}

rgb heat_colour(double weight) {
  // Linear from white to the blue (33, 102, 172) of a ColorBrewer sequential scale.
  const double t = std::clamp(weight, 0.0, 1.0);
  const auto mix = [t](int to) { return static_cast<int>(std::lround(255 + t * (to - 255))); };
  return {mix(33), mix(102), mix(172)};
}

bool light_text_on(double weight) {
  return weight > 0.55;
}

std::string css_colour(rgb c) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", c.r, c.g, c.b);
  return buffer;
}

int64_t most_attended_key(const matrix& weights, int64_t i) {
  int64_t best = 0;
  for (int64_t j = 1; j < weights.cols; ++j)
    if (weights(i, j) > weights(i, best)) best = j;
  return best;
}

bool is_masked(const head_trace& head, int64_t i, int64_t j) {
  return std::isinf(head.masked(i, j)) && head.masked(i, j) < 0;
}

std::string dot_product_terms(const head_trace& head, int64_t i, int64_t j) {
  if (head.q.cols > 4) return "the sum of " + std::to_string(head.q.cols) + " products";
  std::string terms;
  for (int64_t c = 0; c < head.q.cols; ++c)
    terms += (c ? " + (" : "(") + fixed(head.q(i, c)) + ")(" + fixed(head.k(j, c)) + ")";
  return terms;
}

std::string weighted_sum_terms(const attention_trace& trace, const head_trace& head, int64_t i) {
  std::vector<int64_t> keys;
  for (int64_t j = 0; j < head.weights.cols; ++j)
    if (!is_masked(head, i, j)) keys.push_back(j);
  const size_t visible = keys.size();
  if (visible > 6) {
    std::stable_sort(keys.begin(), keys.end(),
                     [&](int64_t a, int64_t b) { return head.weights(i, a) > head.weights(i, b); });
    keys.resize(3);
  }
  std::string sum;
  for (int64_t j : keys)
    sum += (sum.empty() ? "" : " + ") + percent(head.weights(i, j)) + " × v(" +
           trace.tokens[static_cast<size_t>(j)] + ")";
  return keys.size() < visible ? sum + " + ..." : sum;
}

std::string row_text(const matrix& m, int64_t i) {
  std::string text = "[";
  for (int64_t c = 0; c < m.cols; ++c) text += (c ? ", " : "") + fixed(m(i, c));
  return text + "]";
}

std::string escape_xml(std::string_view text) {
  std::string out;
  for (char c : text) switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  return out;
}

int64_t display_width(std::string_view text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

}  // namespace qkv::explain::detail
