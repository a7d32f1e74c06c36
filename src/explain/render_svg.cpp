// The SVG heatmap of attention weights: geometry in pixels, labels from the tokens.
#include "qkv/explain/render_svg.hpp"

#include <algorithm>
#include <sstream>

#include "format.hpp"

namespace qkv::explain {
namespace {

using detail::escape_xml;

constexpr int cell_w = 76, cell_h = 40, gap = 36, title_h = 34, char_w = 8;

// The grids of heads [first, last), side by side.
std::string heatmap(const attention_trace& t, int64_t first, int64_t last) {
  const int64_t N = static_cast<int64_t>(t.tokens.size());
  int64_t longest = 1;
  for (const std::string& token : t.tokens)
    longest = std::max(longest, detail::display_width(token));
  const int64_t label_w = longest * char_w + 16;     // query labels, left of the grid
  const int64_t grid_w = label_w + N * cell_w;       // one head's grid with its labels
  const int64_t grid_h = title_h + 24 + N * cell_h;  // title, key labels, rows
  const int64_t H = last - first;
  // At least as wide as the footnote (about 7 px a character at 13 px).
  const int64_t width = std::max<int64_t>(H * grid_w + (H - 1) * gap + 16, 540);
  const int64_t height = grid_h + 44;

  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" width=\"" << width
    << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << ' ' << height
    << "\" font-family=\"system-ui, sans-serif\" font-size=\"13\">\n"
    << "<title>Attention weights: " << escape_xml(t.title) << "</title>\n";
  for (int64_t h = first; h < last; ++h) {
    const head_trace& head = t.heads[static_cast<size_t>(h)];
    const int64_t x0 = 8 + (h - first) * (grid_w + gap), y0 = title_h + 24;
    s << "<g class=\"head\" data-head=\"" << h << "\">\n<text x=\"" << x0 << "\" y=\"20\" "
      << "font-weight=\"bold\">" << (t.heads.size() > 1 ? "Head " + std::to_string(h) + ": a" : "A")
      << "ttention weights" << (t.causal ? " (causal)" : "") << "</text>\n";
    for (int64_t j = 0; j < N; ++j)
      s << "<text class=\"key-label\" x=\"" << x0 + label_w + j * cell_w + cell_w / 2 << "\" y=\""
        << y0 - 8 << "\" text-anchor=\"middle\">" << escape_xml(t.tokens[static_cast<size_t>(j)])
        << "</text>\n";
    for (int64_t i = 0; i < N; ++i) {
      const std::string& query = t.tokens[static_cast<size_t>(i)];
      const int64_t y = y0 + i * cell_h;
      s << "<text class=\"query-label\" x=\"" << x0 + label_w - 8 << "\" y=\"" << y + cell_h / 2 + 5
        << "\" text-anchor=\"end\">" << escape_xml(query) << "</text>\n";
      for (int64_t j = 0; j < N; ++j) {
        const std::string& key = t.tokens[static_cast<size_t>(j)];
        const bool masked = detail::is_masked(head, i, j);
        const double w = head.weights(i, j);
        const int64_t x = x0 + label_w + j * cell_w;
        s << "<rect class=\"cell" << (masked ? " masked" : "") << "\" x=\"" << x << "\" y=\"" << y
          << "\" width=\"" << cell_w - 2 << "\" height=\"" << cell_h - 2 << "\" rx=\"3\" fill=\""
          << (masked ? "#e6e6e6" : detail::css_colour(detail::heat_colour(w))) << "\" data-query=\""
          << escape_xml(query) << "\" data-key=\"" << escape_xml(key) << "\" data-score=\""
          << detail::shortest(head.scores(i, j)) << "\" data-scaled=\""
          << detail::shortest(head.scaled(i, j)) << "\" data-weight=\"" << detail::shortest(w)
          << "\"><title>" << escape_xml(query) << " → " << escape_xml(key) << ": "
          << (masked ? "hidden by the causal mask"
                     : detail::percent(w) + " (Q·K^T = " + detail::fixed(head.scores(i, j)) + ")")
          << "</title></rect>\n"
          << "<text class=\"value\" x=\"" << x + cell_w / 2 - 1 << "\" y=\"" << y + cell_h / 2 + 4
          << "\" text-anchor=\"middle\" pointer-events=\"none\" fill=\""
          << (!masked && detail::light_text_on(w) ? "#ffffff" : "#1a1a1a") << "\">"
          << (masked ? "×" : detail::percent(w)) << "</text>\n";
      }
    }
    s << "</g>\n";
  }
  s << "<text x=\"8\" y=\"" << height - 12 << "\" fill=\"#555\">rows: queries, columns: keys; "
    << "each row sums to 100%" << (t.causal ? "; × = hidden by the causal mask" : "")
    << "</text>\n</svg>\n";
  return s.str();
}

}  // namespace

std::string render_svg(const attention_trace& t) {
  return heatmap(t, 0, static_cast<int64_t>(t.heads.size()));
}

std::string render_svg(const attention_trace& t, int64_t head) {
  return heatmap(t, head, head + 1);
}

}  // namespace qkv::explain
