// .safetensors reading and writing. The header is parsed with nlohmann-json (a key given twice is
// refused); every entry is checked (dtype, shape, byte range, all sizes with checked arithmetic)
// before any data is converted, so that a corrupt file is refused with a message naming the
// tensor instead of being read out of bounds or misread. Two readers share those checks: one
// widens every tensor to fp32 (what the layers compute from), one keeps F16 and BF16 as stored.
#include "qkv/io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "qkv/error.hpp"
#include "qkv/io/atomic_file.hpp"
#include "strict_json.hpp"

static_assert(std::endian::native == std::endian::little, "qkv assumes a little-endian host");

namespace qkv::io {
namespace {

// A header larger than this is certainly corrupt (the reference implementation's limit).
constexpr uint64_t max_header_bytes = 100'000'000;

[[noreturn]] void refuse(const std::string& source, const std::string& why) {
  throw error("'" + source + "': " + why);
}

int64_t dtype_bytes(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F64") return 8;
  if (dtype == "F16" || dtype == "BF16") return 2;
  return 0;
}

struct entry {
  std::string name, dtype;
  shape_t shape;
  uint64_t begin = 0, end = 0;
};

entry parse_entry(const std::string& source, const std::string& name, const nlohmann::json& j) {
  const std::string where = "tensor '" + name + "'";
  if (!j.is_object() || !j.contains("dtype") || !j.contains("shape") || !j.contains("data_offsets"))
    refuse(source, where + ": header entry needs dtype, shape and data_offsets");
  entry e;
  e.name = name;
  if (!j["dtype"].is_string()) refuse(source, where + ": dtype must be a string");
  e.dtype = j["dtype"].get<std::string>();
  if (dtype_bytes(e.dtype) == 0)
    refuse(source, where + ": unsupported dtype " + e.dtype + " (expected F32, F64, F16 or BF16)");
  const auto& shape = j["shape"];
  if (!shape.is_array()) refuse(source, where + ": shape must be an array");
  for (const auto& s : shape) {
    if (!s.is_number_unsigned() || s.get<uint64_t>() > uint64_t{INT64_MAX})
      refuse(source, where + ": shape entries must be integers in [0, 2^63)");
    e.shape.push_back(s.get<int64_t>());
  }
  const auto& offsets = j["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    refuse(source, where + ": data_offsets must be [begin, end], integers >= 0");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.end < e.begin) refuse(source, where + ": data_offsets end < begin");
  // Checked sizes: a shape whose element or byte count wraps around is refused, never wrapped.
  int64_t count = 0;
  try {
    count = element_count(e.shape);
  } catch (const error& x) {
    refuse(source, where + ": " + x.what());
  }
  const uint64_t item = static_cast<uint64_t>(dtype_bytes(e.dtype));
  if (static_cast<uint64_t>(count) > (e.end - e.begin) / item ||
      static_cast<uint64_t>(count) * item != e.end - e.begin)
    refuse(source, where + ": " + std::to_string(e.end - e.begin) + " bytes of data for " +
                       e.dtype + " of shape " + to_string(e.shape) + " (needs " +
                       std::to_string(count) + " x " + std::to_string(item) + ")");
  return e;
}

// Every entry of the file, checked, sorted by offset, and the data section they tile.
std::vector<entry> parse_entries(std::string_view bytes, const std::string& source, metadata* meta,
                                 std::string_view& data) {
  if (bytes.size() < 8) refuse(source, "not a .safetensors file: shorter than 8 bytes");
  uint64_t header_length;
  std::memcpy(&header_length, bytes.data(), 8);
  if (header_length > max_header_bytes || header_length > bytes.size() - 8)
    refuse(source, "header length " + std::to_string(header_length) + " exceeds the file (" +
                       std::to_string(bytes.size()) + " bytes)");
  nlohmann::json header;
  try {
    header = parse_json_strictly(bytes.substr(8, header_length));
  } catch (const error& e) {
    refuse(source, std::string("header: ") + e.what());
  } catch (const nlohmann::json::exception& e) {
    refuse(source, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) refuse(source, "header is not a JSON object");

  data = bytes.substr(8 + header_length);
  std::vector<entry> entries;
  for (const auto& [name, value] : header.items())
    if (name != "__metadata__") entries.push_back(parse_entry(source, name, value));
  if (const auto it = header.find("__metadata__"); it != header.end()) {
    if (!it->is_object()) refuse(source, "__metadata__ must be an object of strings");
    for (const auto& [key, value] : it->items())
      if (!value.is_string()) refuse(source, "__metadata__ entry '" + key + "' is not a string");
  }
  if (meta) {
    meta->clear();
    if (const auto it = header.find("__metadata__"); it != header.end())
      for (const auto& [key, value] : it->items()) (*meta)[key] = value.get<std::string>();
  }
  // Byte ranges tile the data exactly, as the format requires: sorted by begin, each starts where
  // the previous one ended, and the last ends with the file. So no two overlap, none lies outside
  // the data, and no bytes are left over (a file is one thing, not a safetensors and more).
  std::sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const entry* previous = nullptr;
  for (const entry& e : entries) {
    if (e.end > data.size())
      refuse(source, "tensor '" + e.name + "': data_offsets [" + std::to_string(e.begin) + ", " +
                         std::to_string(e.end) + "] out of range: the file holds " +
                         std::to_string(data.size()) + " bytes of data (truncated?)");
    if (e.begin < expected)
      refuse(source, "tensors '" + previous->name + "' and '" + e.name + "' overlap in the data");
    if (e.begin > expected)
      refuse(source, "tensor '" + e.name + "': data_offsets begin at " + std::to_string(e.begin) +
                         ", leaving bytes [" + std::to_string(expected) + ", " +
                         std::to_string(e.begin) + ") of the data unused");
    expected = e.end;
    previous = &e;
  }
  if (expected != data.size())
    refuse(source, "the data holds " + std::to_string(data.size() - expected) +
                       " bytes after the last tensor's (" + std::to_string(expected) +
                       "): not what its header says");

  return entries;
}

}  // namespace

stored_tensors parse_safetensors_stored(std::string_view bytes, const std::string& source,
                                        metadata* meta) {
  std::string_view data;
  stored_tensors out;
  for (const entry& e : parse_entries(bytes, source, meta, data)) {
    const char* src = data.data() + e.begin;
    if (e.dtype == "F64") {  // no kernel reads float64: rounded to fp32
      stored_tensor t(dtype::f32, e.shape);
      auto* values = static_cast<float*>(t.data());
      for (int64_t i = 0; i < t.numel(); ++i) {
        double x;
        std::memcpy(&x, src + i * int64_t{sizeof x}, sizeof x);
        values[i] = static_cast<float>(x);
      }
      out.emplace(e.name, std::move(t));
      continue;
    }
    stored_tensor t(e.dtype == "F32"   ? dtype::f32
                    : e.dtype == "F16" ? dtype::f16
                                       : dtype::bf16,
                    e.shape);
    if (e.end > e.begin)  // an empty tensor has no storage: memcpy must not see its null pointer
      std::memcpy(t.data(), src, static_cast<size_t>(e.end - e.begin));  // the bits as stored
    out.emplace(e.name, std::move(t));
  }
  return out;
}

named_tensors parse_safetensors(std::string_view bytes, const std::string& source, metadata* meta) {
  stored_tensors stored = parse_safetensors_stored(bytes, source, meta);
  named_tensors out;
  // One tensor at a time, so that a file's data is held at most once in each form.
  while (!stored.empty()) {
    auto node = stored.extract(stored.begin());
    out.emplace(std::move(node.key()), node.mapped().to_tensor());  // exact for f16 and bf16
  }
  return out;
}

named_tensors read_safetensors(const std::string& path, metadata* meta) {
  return parse_safetensors(read_regular_file(path), path, meta);
}

stored_tensors read_safetensors_stored(const std::string& path, metadata* meta) {
  return parse_safetensors_stored(read_regular_file(path), path, meta);
}

std::string serialize_safetensors(const named_tensors& tensors, const metadata& meta) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  for (const auto& [key, value] : meta) header["__metadata__"][key] = value;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const uint64_t size = static_cast<uint64_t>(t.numel()) * sizeof(float);
    header[name] = {
        {"dtype", "F32"}, {"shape", t.shape()}, {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  const uint64_t length = json.size();
  std::memcpy(bytes.data(), &length, 8);
  bytes += json;
  for (const auto& [name, t] : tensors)
    bytes.append(reinterpret_cast<const char*>(t.data()),
                 static_cast<size_t>(t.numel()) * sizeof(float));
  return bytes;
}

void write_safetensors(const std::string& path, const named_tensors& tensors,
                       const metadata& meta) {
  write_file_atomically(path, serialize_safetensors(tensors, meta));
}

}  // namespace qkv::io
