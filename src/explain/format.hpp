// Formatting shared by the explain renderers: fixed-point numbers, percentages, the heatmap's
// colour scale, the most attended key, and escaping for XML/HTML. Internal to src/explain.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qkv/explain/attention_map.hpp"
#include "qkv/explain/trace.hpp"

namespace qkv::explain::detail {

// The precision every renderer prints: matrices to 4 decimals, weights as percentages to 1.
inline constexpr int matrix_decimals = 4;
inline constexpr int percent_decimals = 1;

// "-0.6523" (fixed, `decimals` places; "-0.0000" printed as "0.0000").
std::string fixed(double value, int decimals = matrix_decimals);
// The shortest decimal that reads back as the same double ("null" for a non-finite value,
// which JSON cannot spell): the full value, for JSON and for hover text.
std::string shortest(double value);
// 0.35727 -> "35.7%".
std::string percent(double weight);

struct rgb {
  int r, g, b;
};
// The heatmap colour of an attention weight in [0, 1]: white (0) to deep blue (1).
rgb heat_colour(double weight);
// Whether text on heat_colour(weight) should be white rather than dark, for contrast.
bool light_text_on(double weight);
std::string css_colour(rgb c);

// The key (column) that query (row) i of attention `weights` attends to most, the first on a
// tie: a head's weights or a word table's.
int64_t most_attended_key(const matrix& weights, int64_t i);
// Whether the kernel hid key j from query i (its masked score is -inf).
bool is_masked(const head_trace& head, int64_t i, int64_t j);
// The same for a head of a map: its masked scores when traced, else the causal rule (j > i).
bool is_masked(const attention_map& map, const map_head& head, int64_t i, int64_t j);

// The arithmetic of the dot product q_i·k_j, "(0.7621)(-0.1469) + (-0.0428)(-0.3038)" for
// d <= 4, else "the sum of d products".
std::string dot_product_terms(const head_trace& head, int64_t i, int64_t j);
// Output row i as a weighted sum, "35.7% × v(Write) + 40.1% × v(a) + ..." (visible keys only;
// the 3 largest weights when there are more than 6).
std::string weighted_sum_terms(const attention_trace& trace, const head_trace& head, int64_t i);
// "[1.0100, 1.0641]"
std::string row_text(const matrix& m, int64_t i);

// The length of the valid UTF-8 sequence at text[at] (1 to 4 bytes), or 0 when the byte there
// does not start one (a stray continuation byte, an overlong form, a surrogate, a cut sequence).
int utf8_sequence_length(std::string_view text, size_t at);
// `text` with some one-byte characters or bytes that are not UTF-8 replaced: `by(byte, valid)`
// gives the replacement of a one-byte character (valid) or of such a byte (!valid), or nullopt
// to keep it; longer characters are kept. (A byte that is not UTF-8 is kept only if `by` says.)
std::string replace_bytes(std::string_view text,
                          const std::function<std::optional<std::string>(unsigned char, bool)>& by);
// A token as the renderers for people show it: a space as "␣", a newline as "\n", a tab as
// "\t", other control characters and bytes that are not UTF-8 as "\xNN"; everything else as is.
std::string display_label(std::string_view token);
// The trace with display_label applied to its tokens.
attention_trace with_display_labels(const attention_trace& trace);
// Prose broken at spaces into lines of at most `width` characters (a longer word stays whole).
std::vector<std::string> wrap(const std::string& text, int64_t width);
// Throws qkv::error "layer: must be in [0, 2), the model has 2 layers; got 5" unless
// 0 <= value < count (what = "layer", counted = "layers").
void check_range(const char* what, int64_t value, int64_t count, const char* counted);
// "1 token", "3 tokens".
std::string count_of(int64_t n, const std::string& noun);

// &, <, >, " and ' as entities, for XML text and attribute values.
std::string escape_xml(std::string_view text);
// The number of characters (UTF-8 code points) of `text`, for aligning columns.
int64_t display_width(std::string_view text);

}  // namespace qkv::explain::detail
