// The HTML walkthrough: inline CSS, the SVG heatmaps of render_svg, and a small script that
// shows a cell's numbers on hover. Everything is in the one file, so it opens offline.
#include "qkv/explain/render_html.hpp"

#include <sstream>

#include "format.hpp"
#include "qkv/explain/render_svg.hpp"

namespace qkv::explain {
namespace {

using detail::escape_xml;
using detail::fixed;

constexpr const char* style = R"css(
:root { --ink: #1d2330; --muted: #5b6475; --line: #e3e7ee; --accent: #2166ac; --bg: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { background: linear-gradient(120deg, #173f6d, #2166ac); color: #fff; padding: 28px 0 24px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; }
header p { margin: 2px 0; opacity: .9; }
.wrap { max-width: 1000px; margin: 0 auto; padding: 0 20px; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 10px; margin: 18px 0;
         padding: 18px 22px; box-shadow: 0 1px 2px rgba(20, 30, 50, .04); }
.panel h2 { margin: 0 0 6px; font-size: 18px; display: flex; align-items: center; gap: 10px; }
.step { display: inline-grid; place-items: center; width: 28px; height: 28px; border-radius: 50%;
        background: var(--accent); color: #fff; font-size: 14px; }
.panel p { margin: 4px 0 12px; color: var(--muted); }
.head-title { margin: 30px 0 0; font-size: 20px; }
code, .formula { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; }
.formula { background: #eef3fa; border-radius: 5px; padding: 1px 6px; color: var(--ink); }
.row { display: flex; flex-wrap: wrap; gap: 26px; }
table.matrix { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 4px 0; }
.matrix caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
.matrix th, .matrix td { padding: 4px 10px; border-bottom: 1px solid var(--line); }
.matrix th { font-weight: 600; color: var(--muted); text-align: left; }
.matrix thead th { text-align: right; }
.matrix td { text-align: right; font-family: ui-monospace, Menlo, monospace; }
.matrix td.masked { color: #9aa3b2; text-align: center; }
.summary td:nth-child(2) { text-align: left; font-family: inherit; font-weight: 600; }
.matrix td:hover, .cell:hover { outline: 2px solid #f4a261; cursor: default; }
ul.narration { list-style: none; padding: 0; margin: 6px 0 14px; font-family: ui-monospace, Menlo, monospace; }
ul.narration li { padding: 2px 0; }
.heatmap { max-width: 100%; height: auto; }
#tip { position: fixed; pointer-events: none; background: #1d2330; color: #fff; padding: 6px 10px;
       border-radius: 6px; font: 13px/1.4 ui-monospace, Menlo, monospace; display: none;
       box-shadow: 0 4px 14px rgba(0, 0, 0, .25); z-index: 10; }
footer { color: var(--muted); font-size: 13px; padding: 10px 0 30px; }
)css";

// Shows the full-precision numbers of the hovered matrix entry or heatmap cell in #tip.
constexpr const char* script = R"js(
(function () {
  const tip = document.getElementById('tip');
  function text(el) {
    if (el.classList.contains('cell')) {
      const d = el.dataset;
      const w = Number(d.weight);
      return d.query + ' \u2192 ' + d.key + '\nQ\u00b7K^T = ' + d.score + '\nscaled = ' +
             d.scaled + '\nweight = ' + (100 * w).toFixed(4) + '%';
    }
    return el.dataset.tip;
  }
  document.querySelectorAll('.cell, [data-tip]').forEach(function (el) {
    el.addEventListener('mousemove', function (e) {
      tip.textContent = text(el);
      tip.style.whiteSpace = 'pre';
      tip.style.display = 'block';
      tip.style.left = (e.clientX + 14) + 'px';
      tip.style.top = (e.clientY + 14) + 'px';
    });
    el.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  });
  document.body.dataset.ready = 'true';
})();
)js";

class page {
 public:
  explicit page(const attention_trace& t) : t_(t) {}

  void panel_start(const std::string& title, const std::string& prose) {
    s_ << "<section class=\"panel\"><h2><span class=\"step\">" << step_++ << "</span>" << title
       << "</h2>\n<p>" << prose << "</p>\n";
  }
  void panel_end() { s_ << "</section>\n"; }

  // A matrix with token rows; columns named by `columns`; cell text from `cell_text`.
  void matrix_table(const std::string& caption, const std::vector<std::string>& columns,
                    const matrix& m, const head_trace* head, bool as_percent) {
    s_ << "<table class=\"matrix\"><caption>" << caption << "</caption><thead><tr><th></th>";
    for (const std::string& c : columns) s_ << "<th>" << escape_xml(c) << "</th>";
    s_ << "</tr></thead><tbody>\n";
    for (int64_t i = 0; i < m.rows; ++i) {
      s_ << "<tr><th>" << escape_xml(t_.tokens[static_cast<size_t>(i)]) << "</th>";
      for (int64_t j = 0; j < m.cols; ++j) {
        if (head && detail::is_masked(*head, i, j)) {
          s_ << "<td class=\"masked\" data-tip=\"hidden by the causal mask\">×</td>";
          continue;
        }
        s_ << "<td data-tip=\"" << detail::shortest(m(i, j)) << "\">"
           << (as_percent ? detail::percent(m(i, j)) : fixed(m(i, j))) << "</td>";
      }
      s_ << "</tr>\n";
    }
    s_ << "</tbody></table>\n";
  }

  void head(int64_t index) {
    const head_trace& h = t_.heads[static_cast<size_t>(index)];
    const std::vector<std::string> dims_k = dims(h.q.cols), dims_v = dims(h.v.cols);
    if (t_.heads.size() > 1) s_ << "<h2 class=\"head-title\">Head " << index << "</h2>\n";

    panel_start("Queries, keys and values",
                "Three learned matrices turn each token's encoding into a <em>query</em> (what "
                "it looks for), a <em>key</em> (what it can be found by) and a <em>value</em> "
                "(what it passes on): <span class=\"formula\">Q = X·W<sub>Q</sub><sup>T</sup>, "
                "K = X·W<sub>K</sub><sup>T</sup>, V = X·W<sub>V</sub><sup>T</sup></span>.");
    s_ << "<div class=\"row\">";
    matrix_table("Q", dims_k, h.q, nullptr, false);
    matrix_table("K", dims_k, h.k, nullptr, false);
    matrix_table("V", dims_v, h.v, nullptr, false);
    s_ << "</div>\n";
    panel_end();

    panel_start("Dot products: how similar is each query to each key?",
                "<span class=\"formula\">Q·K<sup>T</sup></span>: a large positive dot product "
                "means the query and the key point the same way. For “" +
                    escape_xml(t_.tokens[0]) + "”, one pair at a time:");
    s_ << "<ul class=\"narration\">";
    for (int64_t j = 0; j < h.k.rows; ++j)
      s_ << "<li>q(" << escape_xml(t_.tokens[0]) << ")·k("
         << escape_xml(t_.tokens[static_cast<size_t>(j)])
         << ") = " << detail::dot_product_terms(h, 0, j) << " = <b>" << fixed(h.scores(0, j))
         << "</b></li>";
    s_ << "</ul>\n";
    matrix_table("Q·K<sup>T</sup> (rows: queries, columns: keys)", t_.tokens, h.scores, nullptr,
                 false);
    panel_end();

    panel_start("Scaling",
                "Dividing by <span class=\"formula\">√d<sub>k</sub></span> (here × " +
                    fixed(t_.scale) +
                    ") keeps the scores from growing with the dimension, so softmax does not "
                    "saturate." +
                    (t_.causal ? " With the causal mask a token sees only itself and earlier "
                                 "tokens: the hidden scores (×) become −∞."
                               : ""));
    matrix_table("Q·K<sup>T</sup> / √d<sub>k</sub>", t_.tokens, h.scaled, &h, false);
    panel_end();

    panel_start("Softmax: the attention percentages",
                "Each row of scores becomes percentages that sum to 100%: how much each query "
                "token attends to every key token. Hover a cell for its exact numbers.");
    s_ << render_svg(t_, index);
    matrix_table("softmax(Q·K<sup>T</sup> / √d<sub>k</sub>)", t_.tokens, h.weights, &h, true);
    panel_end();

    panel_start("Output: a weighted sum of the values",
                "Each token's output is the sum of every value row, weighted by its "
                "percentages: <span class=\"formula\">softmax(Q·K<sup>T</sup>/√d<sub>k</sub>)·V"
                "</span>.");
    s_ << "<ul class=\"narration\"><li>" << escape_xml(t_.tokens[0]) << ": "
       << escape_xml(detail::weighted_sum_terms(t_, h, 0)) << " = <b>"
       << detail::row_text(h.output, 0) << "</b></li></ul>\n";
    matrix_table("Output", dims_v, h.output, nullptr, false);
    panel_end();

    panel_start("Summary", "Each query and the key it attends to most.");
    s_ << "<table class=\"matrix summary\"><thead><tr><th>query</th><th>most attended key</th>"
       << "<th>weight</th></tr></thead><tbody>";
    for (int64_t i = 0; i < h.weights.rows; ++i) {
      const int64_t j = detail::most_attended_key(h.weights, i);
      s_ << "<tr><th>" << escape_xml(t_.tokens[static_cast<size_t>(i)]) << "</th><td>"
         << escape_xml(t_.tokens[static_cast<size_t>(j)]) << "</td><td data-tip=\""
         << detail::shortest(h.weights(i, j)) << "\">" << detail::percent(h.weights(i, j))
         << "</td></tr>";
    }
    s_ << "</tbody></table>\n";
    panel_end();
  }

  std::string render() {
    const head_trace& first = t_.heads.front();
    s_ << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       << "<title>qkv explain: self-attention step by step</title>\n<style>" << style
       << "</style>\n</head>\n<body>\n<header><div class=\"wrap\"><h1>Self-attention, step by "
       << "step</h1>\n<p>" << escape_xml(t_.title) << "</p>\n<p>"
       << detail::count_of(static_cast<int64_t>(t_.tokens.size()), "token")
       << " · d<sub>k</sub> = " << first.q.cols << " · d<sub>v</sub> = " << first.v.cols << " · "
       << t_.heads.size() << (t_.heads.size() == 1 ? " head" : " heads")
       << (t_.causal ? " · causal" : "") << "</p></div></header>\n<main class=\"wrap\">\n";
    if (!t_.x.empty()) {
      panel_start("The encodings X",
                  "One row per token: its word embedding plus its position encoding.");
      matrix_table("X", dims(t_.x.cols), t_.x, nullptr, false);
      panel_end();
    }
    for (size_t h = 0; h < t_.heads.size(); ++h) head(static_cast<int64_t>(h));
    s_ << "</main>\n<footer class=\"wrap\">Computed by qkv's reference attention kernel "
       << "(float64), the numbers reported by its observer.</footer>\n<div id=\"tip\"></div>\n"
       << "<script>" << script << "</script>\n</body>\n</html>\n";
    return s_.str();
  }

 private:
  static std::vector<std::string> dims(int64_t n) {
    std::vector<std::string> names;
    for (int64_t c = 0; c < n; ++c) names.push_back("dim " + std::to_string(c));
    return names;
  }

  const attention_trace& t_;
  std::ostringstream s_;
  int step_ = 1;
};

}  // namespace

std::string render_html(const attention_trace& trace) {
  return page(detail::with_display_labels(trace)).render();
}

}  // namespace qkv::explain
