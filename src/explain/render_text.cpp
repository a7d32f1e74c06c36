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

class writer {
 public:
  explicit writer(const text_options& options) : options_(options) {}

  // A bold line, after a blank line unless it opens the text.
  void heading(const std::string& text) {
    if (out_.tellp() > 0) out_ << "\n";
    out_ << (options_.colour ? "\x1b[1m" + text + "\x1b[0m" : text) << "\n";
  }
  void line(const std::string& text) { out_ << "  " << text << "\n"; }

  // The first `left` columns left-aligned (labels, text), the others (numbers) right-aligned.
  void table(const std::vector<row>& rows, size_t left = 1) {
    std::vector<int64_t> width;
    for (const row& r : rows)
      for (size_t c = 0; c < r.size(); ++c) {
        if (width.size() <= c) width.push_back(0);
        width[c] = std::max(width[c], detail::display_width(r[c].text));
      }
    for (const row& r : rows) {
      std::string text = "  ";
      for (size_t c = 0; c < r.size(); ++c) {
        const std::string pad(static_cast<size_t>(width[c] - detail::display_width(r[c].text)),
                              ' ');
        const std::string padded = c < left ? r[c].text + pad : pad + r[c].text;
        if (c == 0) {
          text += padded;
        } else {
          text += ' ';
          text += coloured(r[c], std::string(1, ' ').append(padded));
        }
      }
      text.erase(text.find_last_not_of(' ') + 1);
      out_ << text << "\n";
    }
  }

  std::string str() const { return out_.str(); }

 private:
  // The cell on its heatmap colour; same width as without colour, so the columns stay aligned.
  std::string coloured(const cell& c, const std::string& padded) const {
    if (!options_.colour || c.heat < 0) return padded;
    const detail::rgb bg = detail::heat_colour(c.heat);
    std::ostringstream s;
    s << "\x1b[48;2;" << bg.r << ';' << bg.g << ';' << bg.b << "m\x1b[38;5;"
      << (detail::light_text_on(c.heat) ? 231 : 16) << "m" << padded << "\x1b[0m";
    return s.str();
  }

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

  w.heading("Summary: query -> most related key (probability)");
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

std::string render_text(const attention_trace& t, const text_options& options) {
  writer w(options);
  const head_trace& first = t.heads.front();
  std::string title = "qkv explain: self-attention, step by step";
  if (!t.title.empty()) title += "\n" + t.title;
  w.heading(title);
  w.line(std::to_string(t.tokens.size()) + " tokens, d_k = " + std::to_string(first.q.cols) +
         ", d_v = " + std::to_string(first.v.cols) + ", " + std::to_string(t.heads.size()) +
         (t.heads.size() == 1 ? " head" : " heads") + (t.causal ? ", causal" : ""));
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

}  // namespace qkv::explain
