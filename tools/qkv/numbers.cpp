// The checked numeric options of numbers.hpp.
#include "numbers.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <type_traits>

#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "qkv/threads.hpp"

namespace qkv::cli {
namespace {

std::string bound(double x) {
  if (x == std::floor(x) && std::abs(x) < 1e15) return std::to_string(static_cast<int64_t>(x));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

std::string describe(int_range r) {
  const bool low = r.lo != std::numeric_limits<int64_t>::min();
  const bool high = r.hi != std::numeric_limits<int64_t>::max();
  if (low && high)
    return "an integer in [" + std::to_string(r.lo) + ", " + std::to_string(r.hi) + "]";
  if (low) return "an integer >= " + std::to_string(r.lo);
  if (high) return "an integer <= " + std::to_string(r.hi);
  return "an integer";
}

std::string describe(real_range r) {
  const bool low = r.lo != -std::numeric_limits<double>::max();
  const bool high = r.hi != std::numeric_limits<double>::max();
  std::string s = "a finite number";
  if (low && high)
    return s + " in " + (r.lo_closed ? "[" : "(") + bound(r.lo) + ", " + bound(r.hi) +
           (r.hi_closed ? "]" : ")");
  if (low) return s + (r.lo_closed ? " >= " : " > ") + bound(r.lo);
  if (high) return s + (r.hi_closed ? " <= " : " < ") + bound(r.hi);
  return s;
}

[[noreturn]] void refuse(const std::string& flag, const std::string& text,
                         const std::string& rule) {
  throw error(flag + ": expected " + rule + ", got '" + text + "'");
}

// The value type behind an optional flag, for its help text.
template <class T>
struct flag_value {
  using type = T;
};
template <class T>
struct flag_value<std::optional<T>> {
  using type = T;
};

template <class T>
CLI::Option* add_checked(CLI::App* cmd, const std::string& name, T& value, const std::string& help,
                         const std::string& default_text,
                         std::function<T(const std::string&)> parse) {
  return cmd
      ->add_option_function<std::string>(
          name, [&value, parse](const std::string& text) { value = parse(text); }, help)
      ->type_name(std::is_floating_point_v<typename flag_value<T>::type> ? "FLOAT"
                  : std::is_enum_v<typename flag_value<T>::type>         ? "TEXT"
                                                                         : "INT")
      ->default_str(default_text);
}

}  // namespace

int64_t parse_int(const std::string& flag, const std::string& text, int_range range) {
  const char* s = text.c_str();
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(s, &end, 10);
  // strtoll skips leading spaces and accepts what follows a number: the whole text must be one.
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])) || *end != '\0' || end == s)
    refuse(flag, text, describe(range));
  if (errno == ERANGE || n < range.lo || n > range.hi) refuse(flag, text, describe(range));
  return n;
}

uint64_t parse_uint64(const std::string& flag, const std::string& text) {
  const std::string rule = "an integer in [0, 2^64 - 1]";
  // strtoull accepts "-1" (as 2^64 - 1): only digits are taken.
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    refuse(flag, text, rule);
  errno = 0;
  const unsigned long long n = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE) refuse(flag, text, rule);
  return n;
}

double parse_real(const std::string& flag, const std::string& text, real_range range) {
  const char* s = text.c_str();
  char* end = nullptr;
  const double x = std::strtod(s, &end);
  const bool inside = (range.lo_closed ? x >= range.lo : x > range.lo) &&
                      (range.hi_closed ? x <= range.hi : x < range.hi);
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])) || end == s ||
      *end != '\0' || !std::isfinite(x) || !inside)
    refuse(flag, text, describe(range));
  return x;
}

namespace {

// A real stored as fp32: beyond fp32's range it would become inf, so it is refused too.
float parse_fp32(const std::string& flag, const std::string& text, real_range range) {
  const double x = parse_real(flag, text, range);
  if (std::abs(x) > double{std::numeric_limits<float>::max()})
    refuse(flag, text, describe(range) + " within fp32's range (|x| <= 3.4e38)");
  return static_cast<float>(x);
}

}  // namespace

// `name` is the flag itself ("--heads"): numeric options have no short form.
CLI::Option* add_int(CLI::App* cmd, const std::string& name, int& value, int_range range,
                     const std::string& help) {
  range.lo = std::max<int64_t>(range.lo, std::numeric_limits<int>::min());
  range.hi = std::min<int64_t>(range.hi, std::numeric_limits<int>::max());
  return add_checked<int>(cmd, name, value, help, std::to_string(value), [=](const std::string& t) {
    return static_cast<int>(parse_int(name, t, range));
  });
}

CLI::Option* add_int(CLI::App* cmd, const std::string& name, int64_t& value, int_range range,
                     const std::string& help) {
  return add_checked<int64_t>(cmd, name, value, help, std::to_string(value),
                              [=](const std::string& t) { return parse_int(name, t, range); });
}

CLI::Option* add_int(CLI::App* cmd, const std::string& name, std::optional<int>& value,
                     int_range range, const std::string& help) {
  range.lo = std::max<int64_t>(range.lo, std::numeric_limits<int>::min());
  range.hi = std::min<int64_t>(range.hi, std::numeric_limits<int>::max());
  return add_checked<std::optional<int>>(cmd, name, value, help, "",
                                         [=](const std::string& t) -> std::optional<int> {
                                           return static_cast<int>(parse_int(name, t, range));
                                         });
}

CLI::Option* add_uint64(CLI::App* cmd, const std::string& name, uint64_t& value,
                        const std::string& help) {
  return add_checked<uint64_t>(cmd, name, value, help, std::to_string(value),
                               [=](const std::string& t) { return parse_uint64(name, t); });
}

CLI::Option* add_real(CLI::App* cmd, const std::string& name, float& value, real_range range,
                      const std::string& help) {
  return add_checked<float>(cmd, name, value, help, bound(value),
                            [=](const std::string& t) { return parse_fp32(name, t, range); });
}

CLI::Option* add_real(CLI::App* cmd, const std::string& name, double& value, real_range range,
                      const std::string& help) {
  return add_checked<double>(cmd, name, value, help, bound(value),
                             [=](const std::string& t) { return parse_real(name, t, range); });
}

CLI::Option* add_real(CLI::App* cmd, const std::string& name, std::optional<float>& value,
                      real_range range, const std::string& help) {
  return add_checked<std::optional<float>>(
      cmd, name, value, help, "",
      [=](const std::string& t) -> std::optional<float> { return parse_fp32(name, t, range); });
}

CLI::Option* add_dtype(CLI::App* cmd, const std::string& name, dtype& value,
                       const std::string& help) {
  return add_checked<dtype>(cmd, name, value, help, to_string(value),
                            [=](const std::string& t) { return parse_dtype(t, name); });
}

CLI::Option* add_dtype(CLI::App* cmd, const std::string& name, std::optional<dtype>& value,
                       const std::string& help) {
  return add_checked<std::optional<dtype>>(
      cmd, name, value, help, "",
      [=](const std::string& t) -> std::optional<dtype> { return parse_dtype(t, name); });
}

CLI::Option* add_threads(CLI::App* cmd, int& threads) {
  return add_int(cmd, "--threads", threads, {0, thread_limit},
                 "threads, at most " + std::to_string(thread_limit) +
                     " (0 = the QKV_NUM_THREADS environment variable if set, else every core)");
}

void add_run_options(CLI::App* cmd, run_options& run) {
  add_checked<sdpa_impl>(cmd, "--impl", run.impl, "attention kernel: reference, fused or auto",
                         "auto", [](const std::string& t) { return parse_sdpa_impl(t, "--impl"); });
  add_threads(cmd, run.threads);
}

}  // namespace qkv::cli
