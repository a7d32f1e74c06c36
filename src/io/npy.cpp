// .npy reading and writing. The header is a Python dict literal; we parse just the three keys
// NumPy writes ('descr', 'fortran_order', 'shape') and refuse anything we cannot honour.
#include "qkv/io/npy.hpp"

#include <bit>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "qkv/error.hpp"
#include "qkv/io/atomic_file.hpp"
#include "read_file.hpp"

static_assert(std::endian::native == std::endian::little, "qkv assumes a little-endian host");

namespace qkv::io {
namespace {

constexpr char magic[] = "\x93NUMPY";

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw error("'" + path + "': " + why);
}

// The value that follows `'key':` in the header dict, up to the next top-level comma or brace.
std::string header_value(const std::string& path, const std::string& header,
                         const std::string& key) {
  const size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) refuse(path, "not a .npy file: header has no '" + key + "'");
  size_t pos = header.find(':', at);
  if (pos == std::string::npos) refuse(path, "not a .npy file: malformed header");
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  size_t end = pos;
  if (pos < header.size() && header[pos] == '(') {
    end = header.find(')', pos);
    if (end == std::string::npos) refuse(path, "not a .npy file: malformed shape");
    return header.substr(pos, end - pos + 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  std::string value = header.substr(pos, end - pos);
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return value;
}

shape_t parse_shape(const std::string& path, const std::string& text) {
  shape_t shape;
  std::string inner = text.substr(1, text.size() - 2);
  std::stringstream ss(inner);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(' ');
    if (b == std::string::npos) continue;
    item = item.substr(b);
    char* end = nullptr;
    const long long n = std::strtoll(item.c_str(), &end, 10);
    if (end == item.c_str() || n < 0) refuse(path, "malformed shape " + text);
    shape.push_back(n);
  }
  return shape;
}

// The header of a .npy file: dtype, shape and where the data starts.
struct npy_header {
  std::string descr;
  shape_t shape;
  size_t data_start = 0;
};

npy_header parse_header(const std::string& path, const std::string& bytes) {
  if (bytes.size() < 10 || bytes.compare(0, 6, magic, 6) != 0)
    refuse(path, "not a .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) refuse(path, "truncated .npy header");
    uint32_t len = 0;
    std::memcpy(&len, bytes.data() + 8, 4);
    header_len = len;
    header_start = 12;
  } else {
    refuse(path, "unsupported .npy format version " + std::to_string(major) + " (1 to 3 are read)");
  }
  if (bytes.size() < header_start + header_len) refuse(path, "truncated .npy header");
  const std::string header = bytes.substr(header_start, header_len);

  std::string descr = header_value(path, header, "descr");
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"'))
    descr = descr.substr(1, descr.size() - 2);
  if (header_value(path, header, "fortran_order") != "False")
    refuse(path,
           "Fortran-order arrays are not supported; save with C order (np.ascontiguousarray)");
  return {descr, parse_shape(path, header_value(path, header, "shape")), header_start + header_len};
}

// The bytes of n items of `item` bytes after the header; refuses a truncated file.
const char* data_of(const std::string& path, const std::string& bytes, const npy_header& h,
                    size_t item) {
  const size_t need = static_cast<size_t>(element_count(h.shape)) * item;
  if (bytes.size() - h.data_start < need)
    refuse(path, "truncated data: shape " + to_string(h.shape) + " of " + h.descr + " needs " +
                     std::to_string(need) + " bytes, the file holds " +
                     std::to_string(bytes.size() - h.data_start));
  return bytes.data() + h.data_start;
}

}  // namespace

npy_array read_npy(const std::string& path) {
  const std::string bytes = detail::read_file(path);
  const npy_header h = parse_header(path, bytes);
  const std::string& descr = h.descr;
  const shape_t& shape = h.shape;
  size_t item = 0;
  if (descr == "<f4")
    item = 4;
  else if (descr == "<f8")
    item = 8;
  else if (descr == "|b1")
    item = 1;
  else if (descr == ">f4" || descr == ">f8")
    refuse(path, "big-endian dtype '" + descr + "' is not supported; convert with astype('<f4')");
  else
    refuse(path, "unsupported dtype '" + descr + "' (supported: <f4, <f8, |b1)");

  const int64_t n = element_count(shape);
  const size_t need = static_cast<size_t>(n) * item;
  const char* data = data_of(path, bytes, h, item);
  if (descr == "|b1") {
    bool_tensor t(shape);
    for (int64_t i = 0; i < n; ++i) t[i] = data[i] != 0;
    return t;
  }
  tensor t(shape);
  if (item == 4) {
    std::memcpy(t.data(), data, need);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      double x;
      std::memcpy(&x, data + i * 8, 8);
      t[i] = static_cast<float>(x);
    }
  }
  return t;
}

std::vector<int64_t> read_npy_ids(const std::string& path) {
  const std::string bytes = detail::read_file(path);
  const npy_header h = parse_header(path, bytes);
  if (h.descr != "<i8" && h.descr != "<i4")
    refuse(path, "token ids must be <i8 or <i4, got dtype '" + h.descr + "'");
  if (h.shape.size() != 1) refuse(path, "token ids must have shape [T], got " + to_string(h.shape));
  const size_t item = h.descr == "<i8" ? 8 : 4;
  const char* data = data_of(path, bytes, h, item);
  std::vector<int64_t> ids(static_cast<size_t>(h.shape[0]));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (item == 8) {
      std::memcpy(&ids[i], data + i * 8, 8);
    } else {
      int32_t v;
      std::memcpy(&v, data + i * 4, 4);
      ids[i] = v;
    }
  }
  return ids;
}

tensor read_npy_float(const std::string& path) {
  npy_array a = read_npy(path);
  if (auto* t = std::get_if<tensor>(&a)) return std::move(*t);
  refuse(path, "expected a float array (<f4 or <f8), got a boolean array");
}

namespace {

std::string encode(const char* descr, const shape_t& shape, const void* data, size_t bytes) {
  // The shape as a Python tuple: "()", "(5,)", "(2, 3)".
  std::string tuple = "(";
  for (size_t i = 0; i < shape.size(); ++i) tuple += (i ? ", " : "") + std::to_string(shape[i]);
  tuple += shape.size() == 1 ? ",)" : ")";
  std::string dict =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + tuple + ", }";
  // Pad so that the data starts on a 64-byte boundary; the header ends with '\n'.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out(magic, 6);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  out += dict;
  out.append(static_cast<const char*>(data), bytes);
  return out;
}

}  // namespace

void write_npy(const std::string& path, const tensor& t) {
  write_file_atomically(path, encode("<f4", t.shape(), t.data(), t.numel() * sizeof(float)));
}

void write_npy(const std::string& path, const bool_tensor& t) {
  write_file_atomically(path, encode("|b1", t.shape(), t.data(), static_cast<size_t>(t.numel())));
}

}  // namespace qkv::io
