// The standard benchmark shapes, the --shape parser and the FLOP count (docs/benchmarks.md).
#include "shapes.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>

#include "kernels/visibility.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"

namespace qkv::bench {

int64_t visible_pairs(const bench_shape& s) {
  // Each row's band of keys (the kernels' own visibility rule).
  attention_params p;
  p.Nq = s.Nq, p.Nk = s.Nk, p.causal = s.causal;
  p.window_left = s.window_left, p.window_right = s.window_right;
  const detail::visibility vis(p);
  int64_t pairs = 0;
  for (int64_t i = 0; i < s.Nq; ++i) pairs += vis.band(i).hi - vis.band(i).lo;
  return pairs;
}

double forward_flops(const bench_shape& s) {
  return 2.0 * static_cast<double>(s.d + s.dv) * static_cast<double>(visible_pairs(s)) *
         static_cast<double>(s.B * s.Hq);
}

double backward_flops(const bench_shape& s) {
  return 2.5 * forward_flops(s);
}

double kv_bytes(const bench_shape& s) {
  return static_cast<double>(size_in_bytes(s.kv_type) * s.B * s.Hkv * s.Nk * (s.d + s.dv));
}

bool is_decode(const bench_shape& s) {
  return s.Nq <= 16 && s.Nk >= 1024;
}

bench_shape parse_shape(const std::string& text, const std::string& argument) {
  const auto fail = [&](const std::string& why) -> bench_shape {
    throw error(argument + ": '" + text +
                "' is not B,Hq,Hkv,Nq,Nk,d[,dv][,causal][,window=LEFT:RIGHT]: " + why);
  };
  // A side of the window: an integer >= -1 (-1 = unbounded).
  const auto window_side = [&](const std::string& f) {
    int64_t side = 0;
    const auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), side);
    if (f.empty() || ec != std::errc() || ptr != f.data() + f.size() || side < -1)
      fail("each window side must be an integer >= -1 (-1 = unbounded), got '" + f + "'");
    return side;
  };
  std::vector<std::string> fields;
  std::stringstream in(text);
  for (std::string f; std::getline(in, f, ',');) {
    f.erase(0, f.find_first_not_of(" \t"));
    f.erase(f.find_last_not_of(" \t") + 1);
    fields.push_back(f);
  }
  bench_shape s;
  if (!fields.empty() && fields.back().rfind("window=", 0) == 0) {
    const std::string w = fields.back().substr(7);
    const size_t colon = w.find(':');
    if (colon == std::string::npos) fail("expected window=LEFT:RIGHT, got '" + fields.back() + "'");
    s.window_left = window_side(w.substr(0, colon));
    s.window_right = window_side(w.substr(colon + 1));
    fields.pop_back();
  }
  if (!fields.empty() && !fields.back().empty() &&
      !std::isdigit(static_cast<unsigned char>(fields.back()[0]))) {
    s.causal = fields.back() == "causal" ? causal_mode::top_left
                                         : parse_causal_mode(fields.back(), argument + " causal");
    fields.pop_back();
  }
  if (fields.size() != 6 && fields.size() != 7)
    return fail("expected 6 or 7 integers, got " + std::to_string(fields.size()));
  int64_t v[7] = {};
  for (size_t i = 0; i < fields.size(); ++i) {
    const char* end = fields[i].data() + fields[i].size();
    const auto [ptr, ec] = std::from_chars(fields[i].data(), end, v[i]);
    if (ec != std::errc() || ptr != end || fields[i].empty() || v[i] < 1)
      return fail("field " + std::to_string(i + 1) + " ('" + fields[i] +
                  "') must be an integer >= 1");
  }
  s.B = v[0], s.Hq = v[1], s.Hkv = v[2], s.Nq = v[3], s.Nk = v[4], s.d = v[5];
  s.dv = fields.size() == 7 ? v[6] : s.d;
  if (s.Hq % s.Hkv != 0)
    return fail("Hq (" + std::to_string(s.Hq) + ") must be a multiple of Hkv (" +
                std::to_string(s.Hkv) + ")");
  return s;
}

std::string describe(const bench_shape& s) {
  std::ostringstream out;
  out << "B=" << s.B << " Hq=" << s.Hq << " Hkv=" << s.Hkv << " Nq=" << s.Nq << " Nk=" << s.Nk
      << " d=" << s.d << " dv=" << s.dv;
  if (s.causal != causal_mode::none) out << ' ' << to_string(s.causal);
  if (s.windowed()) out << " window=(" << s.window_left << "," << s.window_right << ")";
  if (s.kv_type != dtype::f32) out << " kv=" << to_string(s.kv_type);
  if (s.q_type != dtype::f32) out << " q=" << to_string(s.q_type);
  return out.str();
}

namespace {
bench_shape square(int64_t H, int64_t N, int64_t d, causal_mode causal = causal_mode::none) {
  return {1, H, H, N, N, d, d, causal};
}
}  // namespace

std::vector<bench_shape> standard_shapes() {
  constexpr auto tl = causal_mode::top_left, br = causal_mode::bottom_right;
  std::vector<bench_shape> shapes;
  for (int64_t N : {512, 1024, 2048, 4096, 8192}) shapes.push_back(square(8, N, 64));
  for (int64_t N : {2048, 4096}) shapes.push_back(square(8, N, 64, tl));
  for (int64_t N : {1024, 4096}) shapes.push_back(square(4, N, 128));
  shapes.push_back(square(4, 4096, 128, tl));
  // Decode: one new token sees every cached key, so no mask is needed (as in ort-bench).
  shapes.push_back({1, 32, 32, 1, 4096, 128, 128});
  shapes.push_back({1, 8, 1, 1, 32768, 128, 128});  // MQA: one K/V head shared by 8 queries
  for (int64_t Nq : {8, 32}) shapes.push_back({1, 8, 8, Nq, 4096, 64, 64, br});  // prefill
  shapes.push_back(square(8, 32768, 64));  // long: memory, the composition cannot hold it
  // A sliding window (Mistral's 512) beside the full causal row of the same length.
  shapes.push_back(square(8, 8192, 64, tl));
  bench_shape windowed = square(8, 8192, 64, tl);
  windowed.window_left = 511, windowed.window_right = 0;
  shapes.push_back(windowed);
  // K and V stored in bf16 (every model's KV cache): both decodes, and a prefill.
  for (bench_shape s : {bench_shape{1, 32, 32, 1, 4096, 128, 128},
                        bench_shape{1, 8, 1, 1, 32768, 128, 128}, square(8, 2048, 64)}) {
    s.kv_type = dtype::bf16;
    shapes.push_back(s);
  }
  return shapes;
}

std::vector<bench_shape> quick_shapes() {
  constexpr auto tl = causal_mode::top_left, br = causal_mode::bottom_right;
  return {square(8, 512, 64),
          square(8, 1024, 64, tl),
          {1, 32, 32, 1, 4096, 128, 128},
          {1, 8, 8, 32, 4096, 64, 64, br}};
}

}  // namespace qkv::bench
