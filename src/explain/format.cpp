// Number formatting, the heatmap colour scale and escaping for the explain renderers.
#include "format.hpp"

#include "qkv/error.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <sstream>
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

bool is_masked(const attention_map& map, const map_head& head, int64_t i, int64_t j) {
  return head.steps.masked.empty() ? map.causal && j > i : is_masked(head.steps, i, j);
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

int utf8_sequence_length(std::string_view text, size_t at) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  if (lead < 0x80) return 1;
  // The second byte's range depends on the lead byte: it excludes overlong forms (E0, F0),
  // surrogates (ED) and code points above U+10FFFF (F4).
  int length = 0;
  unsigned char low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (at + static_cast<size_t>(length) > text.size()) return 0;
  if (byte(at + 1) < low || byte(at + 1) > high) return 0;
  for (int k = 2; k < length; ++k)
    if ((byte(at + static_cast<size_t>(k)) & 0xC0) != 0x80) return 0;
  return length;
}

std::string replace_bytes(
    std::string_view text,
    const std::function<std::optional<std::string>(unsigned char, bool)>& by) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const int length = utf8_sequence_length(text, i);
    if (length <= 1) {
      const std::optional<std::string> replacement =
          by(static_cast<unsigned char>(text[i]), length == 1);
      if (replacement) {
        out += *replacement;
        ++i;
        continue;
      }
    }
    out.append(text.substr(i, static_cast<size_t>(std::max(length, 1))));
    i += static_cast<size_t>(std::max(length, 1));
  }
  return out;
}

std::string display_label(std::string_view token) {
  return replace_bytes(token, [](unsigned char byte, bool valid) -> std::optional<std::string> {
    if (byte == ' ') return "\u2423";  // ␣, the visible space
    if (byte == '\n') return "\\n";
    if (byte == '\t') return "\\t";
    if (valid && byte >= 0x20 && byte != 0x7f) return std::nullopt;
    char hex[8];
    std::snprintf(hex, sizeof hex, "\\x%02X", byte);
    return hex;
  });
}

attention_trace with_display_labels(const attention_trace& trace) {
  attention_trace shown = trace;
  for (std::string& token : shown.tokens) token = display_label(token);
  return shown;
}

std::vector<std::string> wrap(const std::string& text, int64_t width) {
  std::vector<std::string> lines{""};
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    std::string& line = lines.back();
    if (!line.empty() && display_width(line) + 1 + display_width(word) > width)
      lines.push_back(word);
    else
      line += (line.empty() ? "" : " ") + word;
  }
  return lines;
}

void check_range(const char* what, int64_t value, int64_t count, const char* counted) {
  if (value < 0 || value >= count)
    throw error(what, "must be in [0, " + std::to_string(count) + "), the model has " +
                          std::to_string(count) + " " + counted + "; got " + std::to_string(value));
}

std::string count_of(int64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
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
