// Numeric command-line options, parsed and checked by one rule: the whole text must be a number
// of the option's type, inside its range (and finite, for reals), or the command stops with exit
// code 2 and a message naming the flag, the rule and the value given. CLI11's own conversion is
// not used for numbers: it clamps or misreports values beyond the type's range.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>

#include "qkv/run_options.hpp"
#include "qkv/tensor_view.hpp"

namespace qkv::cli {

// An integer range [lo, hi].
struct int_range {
  int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
};
// A real range: lo < x (or lo <= x when lo_closed) and x < hi (or <= when hi_closed); x finite.
struct real_range {
  double lo = -std::numeric_limits<double>::max(), hi = std::numeric_limits<double>::max();
  bool lo_closed = true, hi_closed = true;
};

int64_t parse_int(const std::string& flag, const std::string& text, int_range range);
uint64_t parse_uint64(const std::string& flag, const std::string& text);
double parse_real(const std::string& flag, const std::string& text, real_range range);

// Options whose value is checked as above when given; the default shown by --help is the
// variable's value at the time of the call.
CLI::Option* add_int(CLI::App* cmd, const std::string& name, int& value, int_range range,
                     const std::string& help);
CLI::Option* add_int(CLI::App* cmd, const std::string& name, int64_t& value, int_range range,
                     const std::string& help);
CLI::Option* add_int(CLI::App* cmd, const std::string& name, std::optional<int>& value,
                     int_range range, const std::string& help);
CLI::Option* add_uint64(CLI::App* cmd, const std::string& name, uint64_t& value,
                        const std::string& help);
CLI::Option* add_real(CLI::App* cmd, const std::string& name, float& value, real_range range,
                      const std::string& help);
CLI::Option* add_real(CLI::App* cmd, const std::string& name, double& value, real_range range,
                      const std::string& help);
CLI::Option* add_real(CLI::App* cmd, const std::string& name, std::optional<float>& value,
                      real_range range, const std::string& help);

// A storage type (f32, f16 or bf16); another name stops the command naming the flag. The
// optional form stays empty unless the flag is given.
CLI::Option* add_dtype(CLI::App* cmd, const std::string& name, dtype& value,
                       const std::string& help);
CLI::Option* add_dtype(CLI::App* cmd, const std::string& name, std::optional<dtype>& value,
                       const std::string& help);

// --threads, described the same way by every command.
CLI::Option* add_threads(CLI::App* cmd, int& threads);
// --impl (reference, fused or auto) and --threads, for the commands that run attention layers.
void add_run_options(CLI::App* cmd, run_options& run);

}  // namespace qkv::cli
