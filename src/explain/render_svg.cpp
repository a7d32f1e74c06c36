// The SVG heatmaps of attention weights: geometry in pixels, labels from the tokens. Every text
// is placed with its estimated width so that the canvas holds it whole.
#include "qkv/explain/render_svg.hpp"

#include <algorithm>
#include <sstream>

#include "format.hpp"

namespace qkv::explain {
namespace {

using detail::escape_xml;

// Text widths are estimated at char_w pixels a character (13 px system-ui averages about 7;
// bold titles are wider): generous, so that no caption is cut off.
constexpr int char_w = 8, gap = 36, margin = 10, line_h = 20, max_width = 1400;

// One heatmap: a title, labels and a weight matrix; `hidden` says which cells the mask hides;
// `steps`, when traced, adds the scores to each cell.
struct panel {
  std::string title;
  const std::vector<std::string>* labels;
  matrix weights;
  std::vector<bool> hidden;  // [rows·cols]
  const head_trace* steps = nullptr;
};

struct cell_size {
  int w, h;
  bool numbers;
};
// Percentages fit in cells of up to 8 tokens in up to 16 grids; beyond that the cells shrink and
// only colour (each cell's tooltip keeps its number).
cell_size size_for(int64_t n, size_t grids) {
  return n <= 8 && grids <= 16 ? cell_size{72, 36, true} : cell_size{22, 22, false};
}

int64_t longest(const std::vector<std::string>& labels) {
  int64_t n = 1;
  for (const std::string& label : labels) n = std::max(n, detail::display_width(label));
  return n;
}

class canvas {
 public:
  // Draws `panels` in a grid of `columns`, starting at the current height, under a heading.
  void grid(const std::string& heading, const std::vector<panel>& panels, int64_t columns) {
    if (panels.empty()) return;
    if (!heading.empty()) {
      text(margin, y_ + 16, heading, "font-weight=\"bold\" font-size=\"15\"");
      y_ += 28;
    }
    const std::vector<std::string>& labels = *panels.front().labels;
    const cell_size c = size_for(static_cast<int64_t>(labels.size()), panels.size());
    const int64_t n = static_cast<int64_t>(labels.size());
    const int64_t label_w = longest(labels) * char_w + 12;
    // Key labels above the grid: horizontal when they fit a cell, else turned to read upwards.
    const bool turned = longest(labels) * char_w > c.w - 4;
    const int64_t keys_h = turned ? longest(labels) * char_w + 8 : 20;
    const int64_t title_w = [&] {
      int64_t w = 0;
      for (const panel& p : panels) w = std::max(w, detail::display_width(p.title) * char_w);
      return w;
    }();
    const int64_t panel_w = std::max(label_w + n * c.w, title_w), panel_h = 26 + keys_h + n * c.h;
    columns = std::clamp<int64_t>(
        columns, 1, std::max<int64_t>(1, (max_width - 2 * margin + gap) / (panel_w + gap)));
    for (size_t k = 0; k < panels.size(); ++k) {
      const panel& p = panels[k];
      const int64_t col = static_cast<int64_t>(k) % columns,
                    row = static_cast<int64_t>(k) / columns;
      const int64_t x0 = margin + col * (panel_w + gap), y0 = y_ + row * (panel_h + gap / 2);
      s_ << "<g class=\"head\">\n";
      text(x0, y0 + 16, p.title, "font-weight=\"bold\"");
      const int64_t top = y0 + 26 + keys_h, left = x0 + label_w;
      for (int64_t j = 0; j < n; ++j) {
        const int64_t cx = left + j * c.w + c.w / 2;
        const std::string& key = labels[static_cast<size_t>(j)];
        s_ << "<text class=\"key-label\" x=\"" << cx << "\" y=\"" << top - 6 << "\" "
           << (turned ? "transform=\"rotate(-90 " + std::to_string(cx) + " " +
                            std::to_string(top - 6) + ")\" dy=\"4\""
                      : "text-anchor=\"middle\"")
           << ">" << escape_xml(key) << "</text>\n";
        width_ = std::max(width_, cx + c.w);
      }
      for (int64_t i = 0; i < n; ++i) {
        const std::string& query = labels[static_cast<size_t>(i)];
        const int64_t y = top + i * c.h;
        s_ << "<text class=\"query-label\" x=\"" << left - 6 << "\" y=\"" << y + c.h / 2 + 5
           << "\" text-anchor=\"end\">" << escape_xml(query) << "</text>\n";
        for (int64_t j = 0; j < n; ++j) cell(p, labels, c, i, j, left + j * c.w, y);
      }
      s_ << "</g>\n";
      width_ = std::max(width_, x0 + panel_w);
      height_ = std::max(height_, y0 + panel_h);
    }
    y_ = height_ + 18;
  }

  // A note under the grids, wrapped to lines of at most 110 characters.
  void footnote(const std::string& note) {
    for (const std::string& line : detail::wrap(note, 110)) {
      text(margin, y_ + 12, line, "fill=\"#555\"");
      y_ += line_h;
    }
  }

  std::string document(const std::string& title) const {
    const int64_t width = width_ + margin, height = y_ + margin;
    std::ostringstream out;
    out << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" width=\"" << width
        << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << ' ' << height
        << "\" font-family=\"system-ui, sans-serif\" font-size=\"13\">\n<title>Attention weights: "
        << escape_xml(title) << "</title>\n"
        << s_.str() << "</svg>\n";
    return out.str();
  }

 private:
  void text(int64_t x, int64_t y, const std::string& content, const std::string& attributes) {
    s_ << "<text x=\"" << x << "\" y=\"" << y << "\" " << attributes << ">" << escape_xml(content)
       << "</text>\n";
    width_ = std::max(width_, x + detail::display_width(content) * char_w);
  }

  void cell(const panel& p, const std::vector<std::string>& labels, cell_size c, int64_t i,
            int64_t j, int64_t x, int64_t y) {
    const std::string& query = labels[static_cast<size_t>(i)];
    const std::string& key = labels[static_cast<size_t>(j)];
    const bool masked = p.hidden[static_cast<size_t>(i * p.weights.cols + j)];
    const double w = p.weights(i, j);
    s_ << "<rect class=\"cell" << (masked ? " masked" : "") << "\" x=\"" << x << "\" y=\"" << y
       << "\" width=\"" << c.w - 2 << "\" height=\"" << c.h - 2 << "\" rx=\"3\" fill=\""
       << (masked ? "#e6e6e6" : detail::css_colour(detail::heat_colour(w))) << "\" data-query=\""
       << escape_xml(query) << "\" data-key=\"" << escape_xml(key) << "\"";
    if (p.steps)
      s_ << " data-score=\"" << detail::shortest(p.steps->scores(i, j)) << "\" data-scaled=\""
         << detail::shortest(p.steps->scaled(i, j)) << "\"";
    s_ << " data-weight=\"" << detail::shortest(w) << "\"><title>" << escape_xml(query) << " → "
       << escape_xml(key) << ": "
       << (masked ? "hidden by the causal mask"
                  : detail::percent(w) +
                        (p.steps ? " (Q·K^T = " + detail::fixed(p.steps->scores(i, j)) + ")" : ""))
       << "</title></rect>\n";
    if (c.numbers)
      s_ << "<text class=\"value\" x=\"" << x + c.w / 2 - 1 << "\" y=\"" << y + c.h / 2 + 4
         << "\" text-anchor=\"middle\" pointer-events=\"none\" fill=\""
         << (!masked && detail::light_text_on(w) ? "#ffffff" : "#1a1a1a") << "\">"
         << (masked ? "×" : detail::percent(w)) << "</text>\n";
  }

  std::ostringstream s_;
  int64_t y_ = margin, width_ = 0, height_ = 0;
};

std::vector<bool> hidden_cells(const attention_map& map, const map_head& h) {
  const int64_t n = h.steps.weights.rows;
  std::vector<bool> hidden(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      hidden[static_cast<size_t>(i * n + j)] = detail::is_masked(map, h, i, j);
  return hidden;
}

// The heads of one layer in a row of the grid: as many columns as a layer shows heads.
int64_t heads_per_row(const attention_map& map) {
  int64_t most = 1, run = 0;
  for (size_t k = 0; k < map.heads.size(); ++k) {
    run = k > 0 && map.heads[k].layer == map.heads[k - 1].layer ? run + 1 : 1;
    most = std::max(most, run);
  }
  return most;
}

std::string head_title(const attention_map& map, const map_head& h) {
  if (map.model_layers <= 1)
    return map.model_heads > 1 ? "Head " + std::to_string(h.head) : "Attention weights";
  return "Layer " + std::to_string(h.layer) + ", head " + std::to_string(h.head);
}

std::string render(const attention_map& map) {
  std::vector<std::string> tokens, words;
  for (const std::string& token : map.tokens) tokens.push_back(detail::display_label(token));
  for (const word_span& word : map.words) words.push_back(detail::display_label(word.text));
  canvas c;
  const int64_t columns = heads_per_row(map);
  if (!words.empty()) {
    std::vector<panel> tables;
    for (const map_head& h : map.heads) {
      const matrix w = aggregate_words(h.steps.weights, map.words);
      tables.push_back({head_title(map, h), &words, w, std::vector<bool>(w.values.size())});
    }
    c.grid("Word tables", tables, columns);
  }
  std::vector<panel> grids;
  for (const map_head& h : map.heads)
    grids.push_back({head_title(map, h) + (map.causal ? " (causal)" : ""), &tokens, h.steps.weights,
                     hidden_cells(map, h), h.steps.scores.empty() ? nullptr : &h.steps});
  c.grid(words.empty() ? "" : "Tokens", grids, columns);
  c.footnote("Rows: queries, columns: keys; each row sums to 100%.");
  if (map.causal) c.footnote("× = hidden by the causal mask.");
  if (!words.empty()) c.footnote(word_rule);
  return c.document(map.title);
}

}  // namespace

std::string render_svg(const attention_map& map) {
  return render(map);
}

std::string render_svg(const attention_trace& trace) {
  return render(map_of_trace(trace));
}

std::string render_svg(const attention_trace& trace, int64_t head) {
  attention_map map = map_of_trace(trace);
  map.heads = {map.heads[static_cast<size_t>(head)]};
  map.model_heads = 1;
  return render(map);
}

}  // namespace qkv::explain
