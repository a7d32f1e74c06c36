// Position information for Transformers: the sinusoidal encoding of "Attention Is All You Need"
// (section 3.5), added to token embeddings, and rotary position embeddings (RoPE, Su et al.
// 2021), applied to queries and keys as modern decoders do.
#pragma once

#include <cstdint>

#include "qkv/tensor.hpp"
#include "qkv/tensor_view.hpp"

namespace qkv::nn {

// PE[pos, 2i] = sin(pos / 10000^(2i/E)), PE[pos, 2i+1] = cos(pos / 10000^(2i/E)) for positions
// start..start+N-1: [N,E] (E may be odd: the last column is a sine).
tensor sinusoidal_positional_encoding(int64_t N, int64_t E, int64_t start = 0);
// x [B,N,E] + PE (the positions of x's tokens begin at `start`, e.g. the KV cache length).
tensor add_positional_encoding(const tensor& x, int64_t start = 0);

// Which channels RoPE rotates together: `half` pairs c with c + hd/2 (GPT-NeoX, Hugging Face
// Llama), `interleaved` pairs 2i with 2i+1 (RoFormer, Meta's original Llama).
enum class rope_layout { half, interleaved };

struct rope_config {
  float base = 10000.0f;  // theta_i = base^(-2i/hd)
  rope_layout layout = rope_layout::half;
};

// Rotates each pair (x_a, x_b) of channel pair i at position p by the angle p·theta_i:
//   x_a' = x_a·cos - x_b·sin,  x_b' = x_b·cos + x_a·sin.
// x [B,H,N,hd] (hd even), positions start..start+N-1. Then q'·k' depends on positions only
// through their difference.
tensor apply_rope(const tensor& x, int64_t start, const rope_config& config = {});
// The same in place on a strided view (the heads of a projection, as the MHA layer reads them).
void apply_rope_in_place(const mutable_tensor_view& x, int64_t start,
                         const rope_config& config = {});

}  // namespace qkv::nn
