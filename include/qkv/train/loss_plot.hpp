// The loss curve of a training run as a standalone SVG: training loss and held-out loss (nats per
// token) against the step, with labelled axes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qkv::train {

struct loss_point {
  int64_t step;
  double loss;
};

// The SVG document. Either series may be empty.
std::string loss_plot_svg(const std::vector<loss_point>& train,
                          const std::vector<loss_point>& held_out, const std::string& title);

}  // namespace qkv::train
