// SVG loss curves: linear axes from 0 with ticks at round values (1, 2 or 5 times a power of
// ten), the training curve as a thin line, the held-out curve drawn over it dashed with markers.
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

// The round tick spacing for an axis from 0 to `max` with about five ticks: the smallest of
// 1, 2 and 5 times a power of ten that is at least max / 5.
double tick_spacing(double max) {
  const double raw = max / 5, power = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0})
    if (m * power >= raw * (1 - 1e-9)) return m * power;
  return 10 * power;
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
  // Each axis ends at the first tick at or beyond its largest value.
  const double step_tick = std::max(1.0, tick_spacing(max_step)),
               loss_tick = tick_spacing(max_loss);
  max_step = step_tick * std::ceil(max_step / step_tick - 1e-9);
  max_loss = loss_tick * std::ceil(max_loss / loss_tick - 1e-9);
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const auto x_of = [&](double step) { return left + plot_w * step / max_step; };
  const auto y_of = [&](double loss) { return top + plot_h * (1.0 - loss / max_loss); };

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + number(width) +
                    "\" height=\"" + number(height) +
                    "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + number(width / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" +
         escape(title) + "</text>\n";
  // Grid lines and labels at every tick.
  for (int i = 0; i * loss_tick <= max_loss * (1 + 1e-9); ++i) {
    const double loss = i * loss_tick;
    svg += "<line x1=\"" + number(left) + "\" x2=\"" + number(width - right) + "\" y1=\"" +
           number(y_of(loss)) + "\" y2=\"" + number(y_of(loss)) + "\" stroke=\"#ddd\"/>\n";
    svg += "<text x=\"" + number(left - 6) + "\" y=\"" + number(y_of(loss) + 4) +
           "\" text-anchor=\"end\">" + number(loss) + "</text>\n";
  }
  for (int i = 0; i * step_tick <= max_step * (1 + 1e-9); ++i) {
    const double step = i * step_tick;
    svg += "<line x1=\"" + number(x_of(step)) + "\" x2=\"" + number(x_of(step)) + "\" y1=\"" +
           number(top) + "\" y2=\"" + number(top + plot_h) + "\" stroke=\"#eee\"/>\n";
    svg += "<text x=\"" + number(x_of(step)) + "\" y=\"" + number(height - bottom + 16) +
           "\" text-anchor=\"middle\">" + number(step) + "</text>\n";
  }
  svg += "<text x=\"" + number(left + plot_w / 2) + "\" y=\"" + number(height - 12) +
         "\" text-anchor=\"middle\">step</text>\n";
  svg += "<text transform=\"translate(16," + number(top + plot_h / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">loss (nats per byte)</text>\n";
  // A series as a polyline (with `style`: stroke, dashes, width) and its legend entry; with
  // `marker`, a dot at every point, so that a held-out curve stays visible where it meets the
  // training curve.
  const auto polyline = [&](const std::vector<loss_point>& series, const std::string& colour,
                            const std::string& style, bool marker, const char* label,
                            double legend_y) {
    if (series.empty()) return;
    svg += "<polyline fill=\"none\" stroke=\"" + colour + "\" " + style + " points=\"";
    std::string dots;
    for (const loss_point& p : series)
      if (std::isfinite(p.loss)) {
        const std::string x = number(x_of(static_cast<double>(p.step))), y = number(y_of(p.loss));
        svg += x + "," + y + " ";
        if (marker)
          dots += "<circle cx=\"" + x + "\" cy=\"" + y + "\" r=\"3\" fill=\"" + colour + "\"/>\n";
      }
    svg += "\"/>\n" + dots;
    const double x0 = width - right - 130;
    svg += "<line x1=\"" + number(x0) + "\" x2=\"" + number(x0 + 24) + "\" y1=\"" +
           number(legend_y - 4) + "\" y2=\"" + number(legend_y - 4) + "\" stroke=\"" + colour +
           "\" " + style + "/>\n";
    svg += "<text x=\"" + number(x0 + 30) + "\" y=\"" + number(legend_y) + "\" fill=\"" + colour +
           "\">" + label + "</text>\n";
  };
  polyline(train, "#7aa6d6", "stroke-width=\"1\"", false, "training", top + 14);
  polyline(held_out, "#c0392b", "stroke-width=\"2.5\" stroke-dasharray=\"7 4\"", true, "held-out",
           top + 32);
  svg += "</svg>\n";
  return svg;
}

}  // namespace qkv::train
