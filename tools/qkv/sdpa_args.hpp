// The arguments of `qkv sdpa` and the helpers shared by its single-process path (sdpa.cpp) and
// its ring path over MPI (sdpa_ring.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "output_files.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"

namespace qkv::cli {

struct sdpa_args {
  std::string q, k, v, out, mask, causal = "none", lse;
  std::optional<float> scale;
  run_options run;  // --impl, --threads
  std::string grad_out, dq, dk, dv;
  float dropout = 0.0f;       // attention dropout p (0 = off)
  uint64_t dropout_seed = 0;  // its mask: a pure function of (seed, b, h, i, j)
  std::string window;         // "LEFT,RIGHT" (-1 = unbounded side)
  std::optional<float> softcap;
  std::string alibi, sinks, dsinks;        // ALiBi slopes [Hq], sinks [Hq], d sinks output
  bool ring = false;                       // run as one rank of `mpirun -np P qkv sdpa --ring`
  std::string ring_layout = "contiguous";  // contiguous or zigzag (balanced causal work)
  bool ring_layout_given = false;
  // Storage of the inputs: --dtype rounds Q, K and V, --kv-dtype K and V (over --dtype).
  std::optional<dtype> all_dtype, kv_dtype;
  std::string compute = "f32";  // --compute: f32; bf16 is refused (not built)
};

// An sdpa mask file (bool: true = may attend; float: added); errors name `flag`.
attention_mask read_sdpa_mask(const std::string& flag, const std::string& path);
// A library error in the words of `qkv sdpa`'s flags (grad_out -> --grad-out, dropout_p ->
// --dropout).
std::string sdpa_flag_message(const error& e);
// The outputs this command writes (their paths checked together before any work).
std::vector<output_path> sdpa_outputs(const sdpa_args& a);

// The score modifiers of --window, --softcap, --alibi and --sinks into `options`; errors name
// the flag. Reads the two .npy files (on every rank under --ring).
void read_sdpa_modifiers(const sdpa_args& a, sdpa_options& options);

// The --ring path, with the options already parsed from `a`: rank 0 reads and scatters, the
// ranks run ring attention, rank 0 gathers and writes the same whole files as the single-process
// command. Throws qkv::error on every rank for bad input.
void run_sdpa_ring(const sdpa_args& a, const sdpa_options& options);

}  // namespace qkv::cli
