// Checkpoint state: the hyperparameters as named metadata entries (and the first format's
// positional tensor), the vocabulary and the loss curves, each checked as it is read.
#include "qkv/train/checkpoint.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <type_traits>

#include "qkv/error.hpp"

namespace qkv::train {
namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw error("checkpoint '" + path + "': " + why);
}

std::string text_of(float x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", x);  // 9 digits: the float back exactly
  return buffer;
}
std::string text_of(int64_t x) {
  return std::to_string(x);
}
std::string text_of(uint64_t x) {
  return std::to_string(x);
}

// Parses the whole of `text` as T (an integer in decimal, or a float); false if it is not one.
template <typename T>
bool parse_whole(const std::string& text, T& value) {
  const char* end = text.data() + text.size();
  if constexpr (std::is_floating_point_v<T>) {
    if (text == "nan" || text == "-nan") {  // from_chars reads them; printf writes them so
      value = NAN;
      return true;
    }
  }
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end && !text.empty();
}

// The first format: train.hyperparameters, fp32 values in for_each_hyperparameter's order
// (without the seed; attention-dropout, added last, may be missing), and train.seed and
// train.step as four 16-bit pieces each. Returns the same named entries as the new format.
io::metadata legacy_entries(const io::named_tensors& tensors, const std::string& path) {
  const auto it = tensors.find("train.hyperparameters");
  if (it == tensors.end())
    refuse(path,
           "neither the metadata entry qkv.train.format nor the tensor train.hyperparameters "
           "(not a qkv train checkpoint?)");
  std::vector<std::string> names;
  train_config defaults;
  for_each_hyperparameter(defaults, [&](const char* name, auto&) { names.push_back(name); });
  names.pop_back();  // the seed
  const tensor& h = it->second;
  if (h.rank() != 1 || (h.numel() != static_cast<int64_t>(names.size()) &&
                        h.numel() != static_cast<int64_t>(names.size()) - 1))
    refuse(path, "train.hyperparameters must hold " + std::to_string(names.size() - 1) + " or " +
                     std::to_string(names.size()) + " values, got shape " + to_string(h.shape()));
  io::metadata entries{{"train.attention-dropout", "0"}};
  for (int64_t i = 0; i < h.numel(); ++i) {
    const float x = h[i];
    entries["train." + names[static_cast<size_t>(i)]] =
        x == std::trunc(x) && std::fabs(x) < 1e18f ? text_of(static_cast<int64_t>(x)) : text_of(x);
  }
  for (const char* name : {"seed", "step"}) {
    const auto piece_tensor = tensors.find(std::string("train.") + name);
    if (piece_tensor == tensors.end() || piece_tensor->second.numel() != 4)
      refuse(path, std::string("train.") + name + " must hold 4 16-bit pieces");
    uint64_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const float piece = piece_tensor->second[i];
      if (!(piece >= 0.0f && piece <= 65535.0f) || piece != std::trunc(piece))
        refuse(path,
               std::string("train.") + name + " holds a piece outside the integers [0, 65535]");
      value |= static_cast<uint64_t>(piece) << (16 * i);
    }
    entries[std::string("train.") + name] = text_of(value);
  }
  return entries;
}

// [n,2] rows of (step, loss), steps increasing within [first, last].
tensor curve_tensor(const std::vector<loss_point>& curve) {
  tensor t({static_cast<int64_t>(curve.size()), 2});
  for (size_t i = 0; i < curve.size(); ++i) {
    t[static_cast<int64_t>(2 * i)] = static_cast<float>(curve[i].step);
    t[static_cast<int64_t>(2 * i + 1)] = static_cast<float>(curve[i].loss);
  }
  return t;
}

std::vector<loss_point> read_curve(const io::named_tensors& tensors, const std::string& name,
                                   int64_t first, int64_t last, const std::string& path) {
  const auto it = tensors.find(name);
  if (it == tensors.end()) refuse(path, "missing tensor '" + name + "'");
  const tensor& t = it->second;
  if (t.rank() != 2 || t.shape()[1] != 2)
    refuse(path, name + " must be [n,2] rows of (step, loss), got shape " + to_string(t.shape()));
  std::vector<loss_point> curve;
  for (int64_t i = 0; i < t.shape()[0]; ++i) {
    const float step = t[2 * i];
    const int64_t previous = curve.empty() ? first - 1 : curve.back().step;
    if (!(step == std::trunc(step) && step > static_cast<float>(previous) &&
          step <= static_cast<float>(last)))
      refuse(path, name + " row " + std::to_string(i) + ": step " + text_of(step) +
                       " is not an integer above the previous row's and at most the step " +
                       std::to_string(last));
    curve.push_back({static_cast<int64_t>(step), t[2 * i + 1]});
  }
  return curve;
}

}  // namespace

void store_checkpoint_state(const checkpoint_state& s, io::named_tensors& tensors,
                            io::metadata& meta) {
  meta.insert_or_assign(checkpoint_format_key, std::string(checkpoint_format));
  for_each_hyperparameter(s.config, [&](const char* name, const auto& value) {
    meta[std::string("train.") + name] = text_of(value);
  });
  meta["train.step"] = text_of(s.step);
  tensors["train.vocabulary"] =
      tensor({static_cast<int64_t>(s.vocabulary.size())},
             std::vector<float>(s.vocabulary.begin(), s.vocabulary.end()));
  tensors["train.loss_curve"] = curve_tensor(s.train_curve);
  tensors["train.eval_curve"] = curve_tensor(s.eval_curve);
}

checkpoint_state load_checkpoint_state(const io::named_tensors& tensors, const io::metadata& meta,
                                       const std::string& path) {
  const auto format = meta.find(checkpoint_format_key);
  if (format != meta.end() && format->second != checkpoint_format)
    refuse(path, std::string(checkpoint_format_key) + " is '" + format->second +
                     "'; this qkv reads format " + checkpoint_format);
  const io::metadata entries = format != meta.end() ? meta : legacy_entries(tensors, path);
  const auto entry = [&](const std::string& name, auto& value) {
    const auto it = entries.find("train." + name);
    if (it == entries.end()) refuse(path, "missing metadata entry 'train." + name + "'");
    if (!parse_whole(it->second, value))
      refuse(path, "train." + name + ": expected " +
                       (std::is_floating_point_v<std::remove_reference_t<decltype(value)>>
                            ? "a number"
                            : "an integer >= 0 that fits in 64 bits") +
                       ", got '" + it->second + "'");
  };
  checkpoint_state s;
  for_each_hyperparameter(s.config, [&](const char* name, auto& value) { entry(name, value); });
  entry("step", s.step);
  // The vocabulary: sorted distinct bytes.
  const auto vocab = tensors.find("train.vocabulary");
  if (vocab == tensors.end()) refuse(path, "missing tensor 'train.vocabulary'");
  for (const float b : vocab->second.values()) {
    if (!(b >= 0.0f && b <= 255.0f && b == std::trunc(b)) ||
        (!s.vocabulary.empty() && b <= static_cast<float>(s.vocabulary.back())))
      refuse(path, "train.vocabulary must hold increasing byte values 0..255, got " + text_of(b));
    s.vocabulary.push_back(static_cast<uint8_t>(b));
  }
  if (s.vocabulary.empty()) refuse(path, "train.vocabulary is empty");
  // The rules of each value here; those of the model's shapes once the model is read.
  if (const std::string why = hyperparameter_violation(s.config); !why.empty())
    refuse(path, "train." + why);
  if (s.step > static_cast<uint64_t>(s.config.steps))
    refuse(path, "train.step: must be at most train.steps = " + std::to_string(s.config.steps) +
                     ", got " + std::to_string(s.step));
  s.train_curve = read_curve(tensors, "train.loss_curve", 1, static_cast<int64_t>(s.step), path);
  s.eval_curve = read_curve(tensors, "train.eval_curve", 0, static_cast<int64_t>(s.step), path);
  return s;
}

io::named_tensors with_prefix_removed(const io::named_tensors& tensors, const std::string& prefix) {
  io::named_tensors out;
  for (const auto& [name, t] : tensors)
    if (name.starts_with(prefix)) out[name.substr(prefix.size())] = t;
  return out;
}

void add_with_prefix(io::named_tensors& to, const io::named_tensors& from,
                     const std::string& prefix) {
  for (const auto& [name, t] : from) to[prefix + name] = t;
}

}  // namespace qkv::train
