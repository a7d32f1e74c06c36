// SVG loss curves: a linear step axis, a linear loss axis from 0 to the largest loss, polylines.
#include "qkv/train/loss_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace qkv::train {
namespace {

constexpr double width = 720, height = 420, left = 60, right = 20, top = 40, bottom = 50;

std::string number(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", x);
  return buffer;
}

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string loss_plot_svg(const std::vector<loss_point>& train,
                          const std::vector<loss_point>& held_out, const std::string& title) {
  double max_step = 1, max_loss = 1e-9;
  for (const auto* series : {&train, &held_out})
    for (const loss_point& p : *series) {
      max_step = std::max(max_step, static_cast<double>(p.step));
      if (std::isfinite(p.loss)) max_loss = std::max(max_loss, p.loss);
    }
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const auto x_of = [&](double step) { return left + plot_w * step / max_step; };
  const auto y_of = [&](double loss) { return top + plot_h * (1.0 - loss / max_loss); };

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + number(width) +
                    "\" height=\"" + number(height) +
                    "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + number(width / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" +
         escape(title) + "</text>\n";
  // Axes with five ticks each.
  for (int i = 0; i <= 5; ++i) {
    const double loss = max_loss * i / 5, step = max_step * i / 5;
    svg += "<line x1=\"" + number(left) + "\" x2=\"" + number(width - right) + "\" y1=\"" +
           number(y_of(loss)) + "\" y2=\"" + number(y_of(loss)) + "\" stroke=\"#ddd\"/>\n";
    svg += "<text x=\"" + number(left - 6) + "\" y=\"" + number(y_of(loss) + 4) +
           "\" text-anchor=\"end\">" + number(loss) + "</text>\n";
    svg += "<text x=\"" + number(x_of(step)) + "\" y=\"" + number(height - bottom + 16) +
           "\" text-anchor=\"middle\">" + number(std::round(step)) + "</text>\n";
  }
  svg += "<text x=\"" + number(left + plot_w / 2) + "\" y=\"" + number(height - 12) +
         "\" text-anchor=\"middle\">step</text>\n";
  svg += "<text transform=\"translate(16," + number(top + plot_h / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">loss (nats per token)</text>\n";
  const auto polyline = [&](const std::vector<loss_point>& series, const char* colour,
                            const char* label, double legend_y) {
    if (series.empty()) return;
    svg += "<polyline fill=\"none\" stroke=\"" + std::string(colour) +
           "\" stroke-width=\"1.5\" points=\"";
    for (const loss_point& p : series)
      if (std::isfinite(p.loss))
        svg += number(x_of(static_cast<double>(p.step))) + "," + number(y_of(p.loss)) + " ";
    svg += "\"/>\n";
    svg += "<text x=\"" + number(width - right - 8) + "\" y=\"" + number(legend_y) +
           "\" text-anchor=\"end\" fill=\"" + colour + "\">" + label + "</text>\n";
  };
  polyline(train, "#1f77b4", "training", top + 14);
  polyline(held_out, "#d62728", "held-out", top + 30);
  svg += "</svg>\n";
  return svg;
}

}  // namespace qkv::train
