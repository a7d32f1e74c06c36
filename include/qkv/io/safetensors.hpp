// .safetensors files (docs/contracts.md, section 4): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}}, then the raw little-endian data. Reads F32, F64, F16
// and BF16, either all widened to fp32 (read_safetensors: what the layers compute from, since
// Linear, LayerNorm, Embedding and the models multiply fp32 weights) or with F16 and BF16 kept as
// stored (read_safetensors_stored: for a consumer that reads 16-bit data, such as the attention
// API's views); writes F32. Any malformed file is refused with a qkv::error.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "qkv/stored_tensor.hpp"
#include "qkv/tensor.hpp"

namespace qkv::io {

// Tensors by name (for PyTorch weights: the names of module.state_dict()).
using named_tensors = std::map<std::string, tensor>;
// The header's "__metadata__" object: text entries (the format allows strings only).
using metadata = std::map<std::string, std::string>;

// Reads every tensor of the regular file `path`. Refuses (naming `path` and, where it applies,
// the tensor) a header length beyond the file, a header that is not a JSON object of tensor
// entries, a key given twice, an unsupported dtype, a shape whose size overflows, a
// "__metadata__" that is not an object of strings, and byte ranges that do not match their
// shapes or do not tile the data exactly (overlaps, gaps, bytes left over, ranges outside the
// file). With `meta`, also returns the "__metadata__" entries.
named_tensors read_safetensors(const std::string& path, metadata* meta = nullptr);
// The same from the bytes of a whole file; `source` names it in messages.
named_tensors parse_safetensors(std::string_view bytes, const std::string& source,
                                metadata* meta = nullptr);

// Tensors by name as the file stores them: F16 as f16 and BF16 as bf16 (their bits, unconverted),
// F32 as f32, F64 rounded to f32 (no kernel reads float64). The same checks and refusals as
// read_safetensors, which is this followed by an exact widening of each tensor to fp32.
using stored_tensors = std::map<std::string, stored_tensor>;
stored_tensors read_safetensors_stored(const std::string& path, metadata* meta = nullptr);
stored_tensors parse_safetensors_stored(std::string_view bytes, const std::string& source,
                                        metadata* meta = nullptr);

// The bytes of a .safetensors file holding `tensors` as F32, in name order, with the header
// padded by spaces to a multiple of 8 bytes (as the reference implementation does). `meta` goes
// into "__metadata__" beside {"format": "pt"}.
std::string serialize_safetensors(const named_tensors& tensors, const metadata& meta = {});
// Writes serialize_safetensors(tensors, meta) to `path` atomically (no partial file on failure).
void write_safetensors(const std::string& path, const named_tensors& tensors,
                       const metadata& meta = {});

}  // namespace qkv::io
