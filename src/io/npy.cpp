// .npy reading and writing. The header is a Python dict literal; we parse exactly what NumPy
// writes (the keys 'descr', 'fortran_order' and 'shape', each once, and nothing else) and refuse
// anything we cannot honour, so that no file is ever read as something it is not.
#include "qkv/io/npy.hpp"

#include <bit>
#include <cstring>
#include <optional>

#include "qkv/error.hpp"
#include "qkv/half.hpp"
#include "qkv/io/atomic_file.hpp"

static_assert(std::endian::native == std::endian::little, "qkv assumes a little-endian host");

namespace qkv::io {
namespace {

constexpr char magic[] = "\x93NUMPY";

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw error("'" + path + "': " + why);
}

// The header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, read by a
// small recursive-descent parser over Python's literal syntax for the three values NumPy writes.
class header_parser {
 public:
  header_parser(const std::string& path, const std::string& text) : path_(path), text_(text) {}

  struct fields {
    std::string descr;
    bool fortran_order = false;
    shape_t shape;
  };

  fields parse() {
    std::optional<std::string> descr;
    std::optional<bool> fortran;
    std::optional<shape_t> shape;
    expect('{');
    while (!accept('}')) {
      const std::string key = string_literal();
      expect(':');
      const auto once = [&](bool seen) {
        if (seen) fail("header gives '" + key + "' twice");
      };
      if (key == "descr") {
        once(descr.has_value());
        descr = string_literal();
      } else if (key == "fortran_order") {
        once(fortran.has_value());
        fortran = boolean_literal();
      } else if (key == "shape") {
        once(shape.has_value());
        shape = shape_tuple();
      } else {
        fail("unexpected key '" + key +
             "' in the header (a .npy header has descr, "
             "fortran_order and shape)");
      }
      if (!accept(',')) {
        expect('}');
        break;
      }
    }
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the header dict");
    if (!descr || !fortran || !shape)
      fail(std::string("header has no '") +
           (!descr     ? "descr"
            : !fortran ? "fortran_order"
                       : "shape") +
           "'");
    return {*descr, *fortran, *shape};
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    refuse(path_, "not a valid .npy header: " + why);
  }

  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\t'))
      ++pos_;
  }
  bool accept(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) return ++pos_, true;
    return false;
  }
  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
  }
  bool accept_word(const char* word) {
    skip_space();
    const size_t n = std::strlen(word);
    if (text_.compare(pos_, n, word) != 0) return false;
    pos_ += n;
    return true;
  }

  // '...' or "..." without escapes (NumPy's keys and dtype strings have none).
  std::string string_literal() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"'))
      fail("expected a quoted string at offset " + std::to_string(pos_));
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string::npos) fail("unterminated string");
    std::string value = text_.substr(pos_, end - pos_);
    if (value.find('\\') != std::string::npos) fail("escaped string '" + value + "'");
    pos_ = end + 1;
    return value;
  }

  bool boolean_literal() {
    if (accept_word("True")) return true;
    if (accept_word("False")) return false;
    fail("fortran_order must be True or False");
  }

  // (), (5,), (2, 3) or (2, 3,): decimal integers >= 0 only; a 1-tuple needs its comma.
  shape_t shape_tuple() {
    expect('(');
    shape_t shape;
    bool comma_after_last = false;
    while (!accept(')')) {
      skip_space();
      const size_t begin = pos_;
      int64_t n = 0;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, text_[pos_] - '0', &n))
          fail("shape entry " + text_.substr(begin, pos_ - begin + 1) + "... exceeds int64");
        ++pos_;
      }
      if (pos_ == begin)
        fail("shape entries must be integers >= 0, at offset " + std::to_string(pos_));
      if (pos_ < text_.size() && std::strchr(".eEjL_xXoObB", text_[pos_]) != nullptr)
        fail("shape entry at offset " + std::to_string(begin) + " is not a plain integer");
      shape.push_back(n);
      comma_after_last = accept(',');
      if (!comma_after_last) {
        expect(')');
        break;
      }
    }
    if (shape.size() == 1 && !comma_after_last) fail("shape (n) is not a tuple; write (n,)");
    return shape;
  }

  const std::string& path_;
  const std::string& text_;
  size_t pos_ = 0;
};

// The header of a .npy file: dtype, shape and where the data starts.
struct npy_header {
  std::string descr;
  shape_t shape;
  size_t data_start = 0;
};

npy_header parse_header(std::string_view bytes, const std::string& path) {
  if (bytes.size() < 10 || bytes.compare(0, 6, std::string_view(magic, 6)) != 0)
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
  if (bytes.size() - header_start < header_len) refuse(path, "truncated .npy header");
  const std::string header(bytes.substr(header_start, header_len));
  auto [descr, fortran_order, shape] = header_parser(path, header).parse();
  if (fortran_order)
    refuse(path,
           "Fortran-order arrays are not supported; save with C order (np.ascontiguousarray)");
  return {std::move(descr), std::move(shape), header_start + header_len};
}

// The data of h.shape's elements of `item` bytes each. Its size must be exactly what the header
// says; it is compared by division, before anything is allocated, since n * item could wrap.
const char* data_of(std::string_view bytes, const std::string& path, const npy_header& h,
                    size_t item) {
  int64_t n = 0;
  try {
    n = element_count(h.shape);
  } catch (const error& e) {
    refuse(path, e.what());
  }
  const size_t have = bytes.size() - h.data_start;
  const std::string what = "shape " + to_string(h.shape) + " of " + h.descr;
  if (static_cast<uint64_t>(n) > have / item)
    refuse(path, "truncated data: " + what + " needs " + std::to_string(n) + " x " +
                     std::to_string(item) + " bytes, the file holds " + std::to_string(have));
  const size_t need = static_cast<size_t>(n) * item;
  if (have != need)
    refuse(path, "the file holds " + std::to_string(have - need) + " bytes after the data of " +
                     what + " (" + std::to_string(need) + " bytes): not what its header says");
  return bytes.data() + h.data_start;
}

}  // namespace

namespace {

// The element size of a dtype this reader takes (<f4, <f8, <f2, |b1); anything else is refused.
size_t item_size(const std::string& descr, const std::string& path) {
  if (descr == "<f4") return 4;
  if (descr == "<f8") return 8;
  if (descr == "<f2") return 2;
  if (descr == "|b1") return 1;
  if (descr == ">f4" || descr == ">f8" || descr == ">f2")
    refuse(path, "big-endian dtype '" + descr + "' is not supported; convert with astype('<f4')");
  refuse(path, "unsupported dtype '" + descr + "' (supported: <f4, <f8, <f2, |b1)");
}

}  // namespace

npy_array parse_npy(std::string_view bytes, const std::string& path) {
  const npy_header h = parse_header(bytes, path);
  const size_t item = item_size(h.descr, path);
  const char* data = data_of(bytes, path, h, item);
  const int64_t n = element_count(h.shape);
  if (h.descr == "|b1") {
    bool_tensor t(h.shape);
    for (int64_t i = 0; i < n; ++i) t[i] = data[i] != 0;
    return t;
  }
  tensor t(h.shape);
  for (int64_t i = 0; i < n; ++i) {
    const char* at = data + static_cast<size_t>(i) * item;
    if (item == 4) {
      std::memcpy(&t[i], at, 4);
    } else if (item == 8) {
      double x;
      std::memcpy(&x, at, 8);
      t[i] = static_cast<float>(x);
    } else {
      uint16_t bits;
      std::memcpy(&bits, at, 2);
      t[i] = f16_to_float(bits);
    }
  }
  return t;
}

stored_tensor parse_npy_stored(std::string_view bytes, const std::string& path) {
  const npy_header h = parse_header(bytes, path);
  if (h.descr == "|b1") refuse(path, "expected a float array (<f4, <f8 or <f2), got a boolean one");
  const size_t item = item_size(h.descr, path);
  const char* data = data_of(bytes, path, h, item);
  if (item != 2) return round_to(dtype::f32, std::get<tensor>(parse_npy(bytes, path)));
  stored_tensor t(dtype::f16, h.shape);
  if (t.bytes() != 0) std::memcpy(t.data(), data, static_cast<size_t>(t.bytes()));
  return t;
}

stored_tensor read_npy_stored(const std::string& path) {
  return parse_npy_stored(read_regular_file(path), path);
}

npy_array read_npy(const std::string& path) {
  return parse_npy(read_regular_file(path), path);
}

std::vector<int64_t> read_npy_ids(const std::string& path) {
  const std::string bytes = read_regular_file(path);
  const npy_header h = parse_header(bytes, path);
  if (h.descr != "<i8" && h.descr != "<i4")
    refuse(path, "token ids must be <i8 or <i4, got dtype '" + h.descr + "'");
  if (h.shape.size() != 1) refuse(path, "token ids must have shape [T], got " + to_string(h.shape));
  const size_t item = h.descr == "<i8" ? 8 : 4;
  const char* data = data_of(bytes, path, h, item);
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
  refuse(path, "expected a float array (<f4, <f8 or <f2), got a boolean array");
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

void write_npy(const std::string& path, const stored_tensor& t) {
  if (t.type() == dtype::bf16)
    throw error("'" + path + "': .npy has no bfloat16 dtype; write f32 (to_tensor) instead");
  write_file_atomically(path, encode(t.type() == dtype::f16 ? "<f2" : "<f4", t.shape(), t.data(),
                                     static_cast<size_t>(t.bytes())));
}

void write_npy(const std::string& path, const bool_tensor& t) {
  write_file_atomically(path, encode("|b1", t.shape(), t.data(), static_cast<size_t>(t.numel())));
}

}  // namespace qkv::io
