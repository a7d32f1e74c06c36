// .safetensors: round trip, the dtypes PyTorch writes (F64, F16, BF16 read as fp32, or F16 and
// BF16 kept as stored), and the refusal of corrupt files with a message naming what is wrong.
#include "qkv/io/safetensors.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "qkv/error.hpp"
#include "support/cli.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"
#include "support/raw_files.hpp"

namespace qkv::io {
namespace {

// A file from a JSON header and raw data bytes, exactly as given (no validation).
std::string raw_file(const nlohmann::json& header, const std::string& data) {
  return testing::safetensors_bytes(header.dump(), data);
}

template <typename T>
std::string raw_bytes(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof v);
  return out;
}

void expect_refused(const std::string& bytes, const std::vector<std::string>& words) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
    ADD_FAILURE() << "accepted a corrupt file";
  } catch (const error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad.safetensors"), std::string::npos) << what;
    for (const auto& w : words) EXPECT_NE(what.find(w), std::string::npos) << what;
  }
}

TEST(Safetensors, RoundTripThroughAFile) {
  std::mt19937_64 rng(11);
  named_tensors tensors = {{"out_proj.weight", testing::random_tensor({5, 3}, rng)},
                           {"b", testing::random_tensor({7}, rng)},
                           {"scalar", tensor(shape_t{}, 2.5f)},
                           {"empty", tensor({0, 4})}};
  testing::temp_dir dir;
  write_safetensors(dir.file("w.safetensors"), tensors);
  const named_tensors back = read_safetensors(dir.file("w.safetensors"));
  ASSERT_EQ(back.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_EQ(back.at(name).shape(), t.shape()) << name;
    EXPECT_EQ(testing::max_abs_diff(back.at(name), t), 0.0) << name;
  }
  // The header is padded to 8 bytes and the data follows it directly.
  const std::string bytes = serialize_safetensors(tensors);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + (5 * 3 + 7 + 1) * sizeof(float));
}

TEST(Safetensors, ReadsF64F16AndBf16AsFloat32) {
  const nlohmann::json header = {
      {"d", {{"dtype", "F64"}, {"shape", {2}}, {"data_offsets", {0, 16}}}},
      {"h", {{"dtype", "F16"}, {"shape", {4}}, {"data_offsets", {16, 24}}}},
      {"bf", {{"dtype", "BF16"}, {"shape", {2}}, {"data_offsets", {24, 28}}}},
      {"__metadata__", {{"format", "pt"}}}};
  // F16: 1.0 (0x3c00), -2.5 (0xc100), the smallest subnormal 2^-24 (0x0001), inf (0x7c00).
  // BF16: 1.0 (0x3f80), -3.0 (0xc040).
  const std::string data = raw_bytes<double>({0.1, -1e300}) +
                           raw_bytes<uint16_t>({0x3c00, 0xc100, 0x0001, 0x7c00}) +
                           raw_bytes<uint16_t>({0x3f80, 0xc040});
  const named_tensors t = parse_safetensors(raw_file(header, data), "mixed");
  EXPECT_EQ(t.at("d")[0], 0.1f);
  EXPECT_EQ(t.at("d")[1], -INFINITY);  // out of fp32 range, as a cast gives
  EXPECT_EQ(t.at("h")[0], 1.0f);
  EXPECT_EQ(t.at("h")[1], -2.5f);
  EXPECT_EQ(t.at("h")[2], std::ldexp(1.0f, -24));
  EXPECT_EQ(t.at("h")[3], INFINITY);
  EXPECT_EQ(t.at("bf")[0], 1.0f);
  EXPECT_EQ(t.at("bf")[1], -3.0f);
}

// The stored reader keeps F16 and BF16 bits as they are in the file (a kernel reads them through
// a view); F32 stays f32 and F64 is rounded to f32. Widened, they are what read_safetensors gives.
TEST(Safetensors, KeepsF16AndBf16AsStored) {
  const nlohmann::json header = {
      {"d", {{"dtype", "F64"}, {"shape", {2}}, {"data_offsets", {0, 16}}}},
      {"h", {{"dtype", "F16"}, {"shape", {2, 2}}, {"data_offsets", {16, 24}}}},
      {"bf", {{"dtype", "BF16"}, {"shape", {2}}, {"data_offsets", {24, 28}}}},
      {"f", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {28, 32}}}}};
  const std::vector<uint16_t> h_bits{0x3c00, 0xc100, 0x0001, 0x7c00}, bf_bits{0x3f80, 0xc040};
  const std::string data = raw_bytes<double>({0.1, -1e300}) +
                           raw_bytes<uint16_t>({0x3c00, 0xc100, 0x0001, 0x7c00}) +
                           raw_bytes<uint16_t>({0x3f80, 0xc040}) + raw_bytes<float>({-0.5f});
  const std::string file = raw_file(header, data);
  const stored_tensors t = parse_safetensors_stored(file, "mixed");
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t.at("h").type(), dtype::f16);
  EXPECT_EQ(t.at("h").shape(), (shape_t{2, 2}));
  EXPECT_EQ(std::memcmp(t.at("h").data(), h_bits.data(), 8), 0);
  EXPECT_EQ(t.at("bf").type(), dtype::bf16);
  EXPECT_EQ(std::memcmp(t.at("bf").data(), bf_bits.data(), 4), 0);
  EXPECT_EQ(t.at("f").type(), dtype::f32);
  EXPECT_EQ(t.at("d").type(), dtype::f32);
  const named_tensors widened = parse_safetensors(file, "mixed");
  for (const auto& [name, stored] : t)
    EXPECT_EQ(std::memcmp(stored.to_tensor().data(), widened.at(name).data(),
                          static_cast<size_t>(stored.numel()) * sizeof(float)),
              0)
        << name;
  // The same checks refuse a corrupt file.
  EXPECT_THROW(parse_safetensors_stored(file.substr(0, file.size() - 2), "cut"), error);
}

TEST(Safetensors, RefusesCorruptFiles) {
  const auto entry = [](const char* dtype, std::vector<int64_t> shape, uint64_t b, uint64_t e) {
    return nlohmann::json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", {b, e}}};
  };
  const std::string data(32, '\0');
  const std::string good = raw_file({{"a", entry("F32", {2, 2}, 0, 16)}}, data.substr(0, 16));
  EXPECT_NO_THROW(parse_safetensors(good, "good"));

  // Bad header length: beyond the file, and a file shorter than the length field.
  std::string long_header = good;
  const uint64_t huge = 1u << 20;
  std::memcpy(long_header.data(), &huge, 8);
  expect_refused(long_header, {"header length", "exceeds"});
  expect_refused("abc", {"shorter than 8 bytes"});
  // Not JSON, or not an object of entries.
  expect_refused(raw_file(nlohmann::json::array({1, 2}), ""), {"not a JSON object"});
  std::string not_json = good;
  not_json[8] = '#';
  expect_refused(not_json, {"not valid JSON"});
  expect_refused(raw_file({{"a", {{"dtype", "F32"}}}}, data), {"'a'", "data_offsets"});
  // Offsets out of range (truncated data), end before begin, size not matching the shape.
  expect_refused(raw_file({{"a", entry("F32", {2, 2}, 0, 16)}}, data.substr(0, 12)),
                 {"'a'", "out of range", "truncated"});
  expect_refused(raw_file({{"a", entry("F32", {2}, 8, 0)}}, data), {"'a'", "end < begin"});
  expect_refused(raw_file({{"a", entry("F32", {3}, 0, 16)}}, data), {"'a'", "16 bytes", "[3]"});
  // Overlapping tensors.
  expect_refused(raw_file({{"a", entry("F32", {4}, 0, 16)}, {"b", entry("F32", {2}, 8, 16)}}, data),
                 {"'a'", "'b'", "overlap"});
  // Wrong dtype.
  expect_refused(raw_file({{"ids", entry("I64", {2}, 0, 16)}}, data), {"'ids'", "I64"});
  expect_refused(raw_file({{"a", entry("F32", {-1}, 0, 16)}}, data), {"'a'", "shape"});
  // Byte ranges must tile the data: a gap before a tensor, bytes after the last one.
  expect_refused(raw_file({{"a", entry("F32", {2}, 8, 16)}}, data.substr(0, 16)),
                 {"'a'", "unused"});
  expect_refused(raw_file({{"a", entry("F32", {2}, 0, 8)}}, data.substr(0, 12)), {"4 bytes after"});
  // Shapes whose element or byte count wraps around in 64 bits, and entries beyond int64.
  expect_refused(raw_file({{"a", entry("F32", {1ll << 31, 1ll << 31, 4, 1}, 0, 0)}}, ""),
                 {"'a'", "64 bits"});
  expect_refused(raw_file({{"a", entry("F32", {1ll << 62}, 0, 0)}}, ""), {"'a'", "needs"});
  expect_refused(
      raw_file(
          {{"a", {{"dtype", "F32"}, {"shape", {uint64_t{1} << 63}}, {"data_offsets", {0, 4}}}}},
          data.substr(0, 4)),
      {"'a'", "[0, 2^63)"});
  expect_refused(raw_file({{"__metadata__", 3}}, ""), {"__metadata__"});
}

// A key given twice, which JSON parsers resolve silently (the last one wins), is refused: a
// duplicated tensor name, or a duplicated field inside an entry.
TEST(Safetensors, RefusesKeysGivenTwice) {
  const std::string twice_name = R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, )"
                                 R"("a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})";
  const std::string twice_shape =
      R"({"a": {"dtype": "F32", "shape": [1], "shape": [2], "data_offsets": [0, 8]}})";
  for (const std::string& header : {twice_name, twice_shape})
    expect_refused(testing::safetensors_bytes(header, std::string(8, '\0')), {"twice"});
}

TEST(Safetensors, UnreadableOrUnwritablePathsAreErrors) {
  EXPECT_THROW(read_safetensors("/nonexistent/w.safetensors"), error);
  EXPECT_THROW(write_safetensors("/nonexistent/w.safetensors", {}), error);
}

}  // namespace
}  // namespace qkv::io
