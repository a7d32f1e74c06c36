// The terminal walkthrough: one numbered step per intermediate of the trace, each a table whose
// rows (and, for scores, columns) are labelled with the tokens.
#include "qkv/explain/render_text.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "format.hpp"

namespace qkv::explain {
namespace {

using detail::fixed;
using detail::percent;

struct cell {
  std::string text;
  double heat = -1;  // an attention weight to colour the cell with; < 0: no colour
};
using row = std::vector<cell>;

// The cell on its heatmap colour; same width as without colour, so the columns stay aligned.
std::string coloured(const cell& c, const std::string& padded, const text_options& options) {
  if (!options.colour || c.heat < 0) return padded;
  const detail::rgb bg = detail::heat_colour(c.heat);
  std::ostringstream s;
  s << "\x1b[48;2;" << bg.r << ';' << bg.g << ';' << bg.b << "m\x1b[38;5;"
    << (detail::light_text_on(c.heat) ? 231 : 16) << "m" << padded << "\x1b[0m";
  return s.str();
}

// A table as lines of equal visible width: the first `left` columns left-aligned (labels,
// text), the others (numbers) right-aligned; a cell with heat is drawn on its heatmap colour
// when colour is on (the escapes take no columns, so the alignment holds).
struct block {
  std::vector<std::string> lines;
  int64_t width = 0;  // visible columns of every line
};
block table_block(const std::vector<row>& rows, const text_options& options, size_t left = 1) {
  std::vector<int64_t> width;
  for (const row& r : rows)
    for (size_t c = 0; c < r.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], detail::display_width(r[c].text));
    }
  block b;
  for (const int64_t w : width) b.width += w + (b.width ? 2 : 0);
  for (const row& r : rows) {
    std::string text;
    for (size_t c = 0; c < width.size(); ++c) {
      const cell& k = c < r.size() ? r[c] : cell{};
      const std::string pad(static_cast<size_t>(width[c] - detail::display_width(k.text)), ' ');
      const std::string padded = c < left ? k.text + pad : pad + k.text;
      if (c == 0) {
        text += padded;
      } else {
        text += ' ';
        text += coloured(k, std::string(1, ' ').append(padded), options);
      }
    }
    b.lines.push_back(text);
  }
  return b;
}

class writer {
 public:
  explicit writer(const text_options& options) : options_(options) {}

  // A bold line, after a blank line unless it opens the text.
  void heading(const std::string& text) {
    if (out_.tellp() > 0) out_ << "\n";
    out_ << (options_.colour ? "\x1b[1m" + text + "\x1b[0m" : text) << "\n";
  }
  void line(const std::string& text) { out_ << "  " << text << "\n"; }
  // Prose after a blank line, wrapped at spaces to the line width.
  void paragraph(const std::string& text) {
    out_ << "\n";
    for (const std::string& line : detail::wrap(text, options_.width)) out_ << line << "\n";
  }

  void table(const std::vector<row>& rows, size_t left = 1) {
    blocks({table_block(rows, options_, left)});
  }

  // Blocks side by side, as many to a band as fit the line width, bands one under the other.
  void blocks(const std::vector<block>& all) {
    for (size_t first = 0; first < all.size();) {
      size_t last = first + 1;
      int64_t used = 2 + all[first].width;
      while (last < all.size() && used + 4 + all[last].width <= options_.width)
        used += 4 + all[last++].width;
      if (first > 0) out_ << "\n";
      size_t height = 0;
      for (size_t b = first; b < last; ++b) height = std::max(height, all[b].lines.size());
      for (size_t i = 0; i < height; ++i) {
        std::string text = "  ";
        for (size_t b = first; b < last; ++b) {
          if (b > first) text += "    ";
          text += i < all[b].lines.size() ? all[b].lines[i]
                                          : std::string(static_cast<size_t>(all[b].width), ' ');
        }
        text.erase(text.find_last_not_of(' ') + 1);
        out_ << text << "\n";
      }
      first = last;
    }
  }

  std::string str() const { return out_.str(); }

 private:
  text_options options_;
  std::ostringstream out_;
};

// A header row of column names, then one row per token.
std::vector<row> labelled(const std::vector<std::string>& tokens,
                          const std::vector<std::string>& columns, const matrix& m,
                          const auto& format_cell) {
  std::vector<row> rows;
  row header{{""}};
  for (const std::string& name : columns) header.push_back({name});
  rows.push_back(header);
  for (int64_t i = 0; i < m.rows; ++i) {
    row r{{tokens[static_cast<size_t>(i)]}};
    for (int64_t j = 0; j < m.cols; ++j) r.push_back(format_cell(i, j));
    rows.push_back(r);
  }
  return rows;
}

std::vector<std::string> dimension_names(int64_t n, const std::string& prefix) {
  std::vector<std::string> names;
  for (int64_t c = 0; c < n; ++c) names.push_back(prefix + std::to_string(c));
  return names;
}

void features(writer& w, const attention_trace& t, const char* name, const matrix& m) {
  w.line(name);
  w.table(labelled(t.tokens, dimension_names(m.cols, "dim "), m,
                   [&](int64_t i, int64_t j) { return cell{fixed(m(i, j))}; }));
}

// Narrates the first query's dot products, one query-key pair a line.
void narrate_dot_products(writer& w, const attention_trace& t, const head_trace& h) {
  const std::string& first = t.tokens[0];
  w.line("For \"" + first + "\", one query-key pair at a time:");
  std::vector<row> rows;
  for (int64_t j = 0; j < h.k.rows; ++j)
    rows.push_back({{"  q(" + first + ")·k(" + t.tokens[static_cast<size_t>(j)] + ")"},
                    {"= " + detail::dot_product_terms(h, 0, j) + " ="},
                    {fixed(h.scores(0, j))}});
  w.table(rows, 2);
}

// Narrates the first output row as the weighted sum of the value rows.
void narrate_output(writer& w, const attention_trace& t, const head_trace& h) {
  const std::string lead = "For \"" + t.tokens[0] + "\": ";
  w.line(lead + detail::weighted_sum_terms(t, h, 0));
  w.line(std::string(static_cast<size_t>(detail::display_width(lead)), ' ') + "= " +
         detail::row_text(h.output, 0));
}

void render_head(writer& w, const attention_trace& t, const head_trace& h, int step) {
  const auto number = [&](const std::string& title) {
    w.heading(std::to_string(step++) + ". " + title);
  };
  number(t.x.empty() ? "Queries, keys and values (given)"
                     : "Queries, keys and values: Q = X·W_Q^T, K = X·W_K^T, V = X·W_V^T");
  features(w, t, "Q, the queries (what each token is looking for):", h.q);
  features(w, t, "K, the keys (what each token offers to be found by):", h.k);
  features(w, t, "V, the values (what each token passes on):", h.v);

  number("Unscaled dot products Q·K^T: how similar each query is to each key");
  narrate_dot_products(w, t, h);
  w.line("All pairs (rows: queries, columns: keys):");
  w.table(labelled(t.tokens, t.tokens, h.scores,
                   [&](int64_t i, int64_t j) { return cell{fixed(h.scores(i, j))}; }));

  number("Scaled scores: Q·K^T / sqrt(d_k) = Q·K^T × " + fixed(t.scale));
  if (t.causal)
    w.line("Causal mask: a token sees only itself and earlier tokens (× = hidden, -inf).");
  w.table(labelled(t.tokens, t.tokens, h.scaled, [&](int64_t i, int64_t j) {
    return cell{detail::is_masked(h, i, j) ? "×" : fixed(h.scaled(i, j))};
  }));

  number("Softmax: the attention percentages (each row sums to 100%)");
  w.table(labelled(t.tokens, t.tokens, h.weights, [&](int64_t i, int64_t j) {
    return detail::is_masked(h, i, j) ? cell{"×"} : cell{percent(h.weights(i, j)), h.weights(i, j)};
  }));

  number("Output: each row the weighted sum of the value rows, softmax(scaled)·V");
  narrate_output(w, t, h);
  features(w, t, "The output, one row per token:", h.output);

  w.heading("Summary: query -> most attended key (weight)");
  std::vector<row> rows;
  for (int64_t i = 0; i < h.weights.rows; ++i) {
    const int64_t j = detail::most_attended_key(h.weights, i);
    rows.push_back({{t.tokens[static_cast<size_t>(i)]},
                    {"->"},
                    {t.tokens[static_cast<size_t>(j)] + " (" + percent(h.weights(i, j)) + ")"}});
  }
  w.table(rows, 3);
}

}  // namespace

std::string render_text(const attention_trace& trace, const text_options& options) {
  const attention_trace t = detail::with_display_labels(trace);
  writer w(options);
  const head_trace& first = t.heads.front();
  std::string title = "qkv explain: self-attention, step by step";
  if (!t.title.empty()) title += "\n" + t.title;
  w.heading(title);
  w.line(detail::count_of(static_cast<int64_t>(t.tokens.size()), "token") +
         ", d_k = " + std::to_string(first.q.cols) + ", d_v = " + std::to_string(first.v.cols) +
         ", " + std::to_string(t.heads.size()) + (t.heads.size() == 1 ? " head" : " heads") +
         (t.causal ? ", causal" : ""));
  int step = 1;
  if (!t.x.empty()) {
    w.heading("1. The encodings X: one row per token (word embedding + position)");
    w.table(labelled(t.tokens, dimension_names(t.x.cols, "dim "), t.x,
                     [&](int64_t i, int64_t j) { return cell{fixed(t.x(i, j))}; }));
    step = 2;
  }
  for (size_t h = 0; h < t.heads.size(); ++h) {
    if (t.heads.size() > 1) w.heading("=== Head " + std::to_string(h) + " ===");
    render_head(w, t, t.heads[h], step);
  }
  return w.str();
}

namespace {

// "jane 0.94": the key a query attends to most, and its weight.
cell most_attended(const std::vector<std::string>& keys, const matrix& weights, int64_t i) {
  const int64_t j = detail::most_attended_key(weights, i);
  return {keys[static_cast<size_t>(j)] + " " + fixed(weights(i, j), 2), weights(i, j)};
}

// A matrix as a table: a header of key labels, one row per query label, weights to 2 decimals.
block weight_table(const std::string& corner, const std::vector<std::string>& labels,
                   const matrix& weights, const text_options& options) {
  std::vector<row> rows{{{corner}}};
  for (const std::string& label : labels) rows.front().push_back({label});
  for (int64_t i = 0; i < weights.rows; ++i) {
    rows.push_back({{labels[static_cast<size_t>(i)]}});
    for (int64_t j = 0; j < weights.cols; ++j)
      rows.back().push_back({fixed(weights(i, j), 2), weights(i, j)});
  }
  return table_block(rows, options);
}

std::string head_name(const map_head& h) {
  return "layer " + std::to_string(h.layer) + ", head " + std::to_string(h.head);
}

}  // namespace

std::string render_summary(const attention_map& map, const text_options& options) {
  writer w(options);
  std::vector<std::string> tokens;
  for (const std::string& token : map.tokens) tokens.push_back(detail::display_label(token));
  std::vector<std::string> words;
  for (const word_span& word : map.words) words.push_back(detail::display_label(word.text));
  const bool by_word = !words.empty();
  const std::vector<std::string>& units = by_word ? words : tokens;

  std::string title =
      "qkv explain: what each " + std::string(by_word ? "word" : "token") + " attends to";
  if (!map.title.empty()) title += "\n" + map.title;
  w.heading(title);
  std::string counts = detail::count_of(static_cast<int64_t>(tokens.size()), "token");
  if (by_word) counts += ", " + detail::count_of(static_cast<int64_t>(words.size()), "word");
  w.line(counts + "; the model has " + detail::count_of(map.model_layers, "layer") + " × " +
         detail::count_of(map.model_heads, "head") + (map.causal ? ", causal" : ""));

  const auto unit_weights = [&](const map_head& h) {
    return by_word ? aggregate_words(h.steps.weights, map.words) : h.steps.weights;
  };
  if (by_word) {
    w.paragraph(word_rule);
    std::vector<block> tables;
    for (const map_head& h : map.heads) {
      block b = weight_table("", words, unit_weights(h), options);
      const std::string name = head_name(h);
      b.lines.insert(b.lines.begin(),
                     name + std::string(static_cast<size_t>(std::max<int64_t>(
                                            0, b.width - detail::display_width(name))),
                                        ' '));
      b.width = std::max(b.width, detail::display_width(name));
      tables.push_back(std::move(b));
    }
    w.blocks(tables);
  }

  w.heading(std::string("Most attended ") + (by_word ? "word" : "token") +
            " and its weight, per head (rows: queries):");
  // One table per layer; a layer whose heads do not fit the width is split into several.
  const auto layer_table = [&](size_t first, size_t last) {
    std::vector<row> rows{{{"layer " + std::to_string(map.heads[first].layer)}}};
    for (size_t h = first; h < last; ++h)
      rows.front().push_back({"head " + std::to_string(map.heads[h].head)});
    for (size_t i = 0; i < units.size(); ++i) {
      rows.push_back({{units[i]}});
      for (size_t h = first; h < last; ++h)
        rows.back().push_back(
            most_attended(units, unit_weights(map.heads[h]), static_cast<int64_t>(i)));
    }
    return table_block(rows, options, last - first + 1);
  };
  std::vector<block> tables;
  for (size_t first = 0; first < map.heads.size();) {
    size_t last = first + 1;
    while (last < map.heads.size() && map.heads[last].layer == map.heads[first].layer &&
           layer_table(first, last + 1).width + 2 <= options.width)
      ++last;
    tables.push_back(layer_table(first, last));
    first = last;
  }
  w.blocks(tables);

  if (!map.rollout.empty()) {
    w.paragraph(rollout_rule);
    if (by_word) {
      w.blocks({weight_table("rollout", words, aggregate_words(map.rollout, map.words), options)});
    } else {
      std::vector<row> rows{{{"token"}, {"most attended input"}}};
      for (int64_t i = 0; i < map.rollout.rows; ++i)
        rows.push_back({{tokens[static_cast<size_t>(i)]}, most_attended(tokens, map.rollout, i)});
      w.table(rows, 2);
    }
  }
  return w.str();
}

}  // namespace qkv::explain
