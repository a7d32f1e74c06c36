// The attention shapes `qkv bench` measures (docs/contracts.md section 6) and the one FLOP formula
// every row's GFLOP/s comes from. Legend: B batch, Hq/Hkv query/key-value heads, Nq queries, Nk
// keys, d query/key head dim, dv value head dim.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "qkv/attention_params.hpp"

namespace qkv::bench {

struct bench_shape {
  int64_t B = 1, Hq = 1, Hkv = 1, Nq = 1, Nk = 1, d = 64, dv = 64;
  causal_mode causal = causal_mode::none;
  int64_t window_left = -1, window_right = -1;  // a sliding window; (-1, -1): none
  dtype kv_type = dtype::f32;                   // the storage type of K and V
  dtype q_type = dtype::f32;                    // the storage type of Q
  bool windowed() const { return window_left >= 0 || window_right >= 0; }
};

// Query-key pairs visible under the causal mode and the window, per batch and head.
int64_t visible_pairs(const bench_shape& s);
// docs/contracts.md section 6: forward 2·(d+dv)·(visible pairs) per batch and head; backward 2.5x
// that.
double forward_flops(const bench_shape& s);
double backward_flops(const bench_shape& s);
// Bytes of K and V, the data a decode step must read: B·Hkv·Nk·(d+dv)·(4 or 2 bytes).
double kv_bytes(const bench_shape& s);
// Decode: a few queries against many keys, where memory bandwidth is the bound, not FLOPs.
bool is_decode(const bench_shape& s);

// "B,Hq,Hkv,Nq,Nk,d[,dv][,causal]", causal one of none, top-left, bottom-right (or "causal" for
// top-left). Throws qkv::error naming `argument` and the rule.
bench_shape parse_shape(const std::string& text, const std::string& argument = "--shape");
// "B=1 Hq=8 Hkv=8 Nq=512 Nk=512 d=64 dv=64 top-left": for notes and tables.
std::string describe(const bench_shape& s);
// gtest prints a shape as describe() does.
inline void PrintTo(const bench_shape& s, std::ostream* os) {
  *os << describe(s);
}

// The standard shapes of docs/benchmarks.md (with their causal variants) and the --quick subset.
std::vector<bench_shape> standard_shapes();
std::vector<bench_shape> quick_shapes();

}  // namespace qkv::bench
