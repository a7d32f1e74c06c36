// .npy reading and writing (docs/contracts.md section 4): round trips, every accepted header
// version and dtype, and refusal of what we cannot read.
#include "qkv/io/npy.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "qkv/error.hpp"
#include "qkv/half.hpp"
#include "support/cli.hpp"
#include "support/error_message.hpp"
#include "support/raw_files.hpp"

namespace qkv::io {
namespace {

// Writes a .npy file by hand: header version `major`, `dict` padded, then `data`.
void write_file(const std::string& path, int major, const std::string& dict,
                const std::string& data) {
  std::ofstream(path, std::ios::binary) << testing::npy_bytes(dict, data, major);
}

TEST(Npy, FloatRoundTripKeepsShapeAndBits) {
  testing::temp_dir dir;
  tensor t({2, 3, 1}, {1.5f, -0.0f, 1e-40f, 3.25f, -7.0f, 1e30f});
  write_npy(dir.file("t.npy"), t);
  const tensor back = read_npy_float(dir.file("t.npy"));
  ASSERT_EQ(back.shape(), t.shape());
  EXPECT_EQ(std::memcmp(back.data(), t.data(), sizeof(float) * 6), 0);  // subnormal kept
}

// <f2 (float16): widened exactly by read_npy, kept bit for bit by read_npy_stored, and written
// back as <f2; bf16 has no .npy dtype.
TEST(Npy, HalfIsWidenedOrKept) {
  testing::temp_dir dir;
  const uint16_t bits[4] = {0x3c00, 0x8001, 0x7c00, 0xc248};  // 1, -2^-24, inf, -3.140625
  write_file(dir.file("h.npy"), 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }",
             std::string(reinterpret_cast<const char*>(bits), sizeof bits));
  const tensor wide = read_npy_float(dir.file("h.npy"));
  ASSERT_EQ(wide.shape(), (shape_t{2, 2}));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(wide[i], f16_to_float(bits[i])) << i;
  const stored_tensor kept = read_npy_stored(dir.file("h.npy"));
  ASSERT_EQ(kept.type(), dtype::f16);
  ASSERT_EQ(kept.shape(), (shape_t{2, 2}));
  EXPECT_EQ(std::memcmp(kept.data(), bits, sizeof bits), 0);
  write_npy(dir.file("back.npy"), kept);
  const stored_tensor back = read_npy_stored(dir.file("back.npy"));
  ASSERT_EQ(back.type(), dtype::f16);
  EXPECT_EQ(std::memcmp(back.data(), bits, sizeof bits), 0);
  // <f4 and <f8 stay f32; a boolean array and bf16 storage are refused, naming the file.
  write_npy(dir.file("f.npy"), tensor({2}, {1.0f, 2.5f}));
  EXPECT_EQ(read_npy_stored(dir.file("f.npy")).type(), dtype::f32);
  write_npy(dir.file("b.npy"), bool_tensor({2}, {1, 0}));
  const std::string refusal = testing::error_of([&] { read_npy_stored(dir.file("b.npy")); });
  EXPECT_NE(refusal.find("b.npy"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("boolean"), std::string::npos) << refusal;
  const std::string bf = testing::error_of(
      [&] { write_npy(dir.file("bf.npy"), round_to(dtype::bf16, tensor({1}, {1.0f}))); });
  EXPECT_NE(bf.find("bfloat16"), std::string::npos) << bf;
  EXPECT_FALSE(std::ifstream(dir.file("bf.npy")).good());
}

TEST(Npy, RankZeroAndOneShapes) {
  testing::temp_dir dir;
  write_npy(dir.file("s.npy"), tensor({}, {4.0f}));
  write_npy(dir.file("v.npy"), tensor({3}, {1, 2, 3}));
  EXPECT_EQ(read_npy_float(dir.file("s.npy")).shape(), shape_t{});
  EXPECT_EQ(read_npy_float(dir.file("v.npy")).shape(), shape_t{3});
  std::ifstream in(dir.file("v.npy"), std::ios::binary);
  std::string header(128, '\0');
  in.read(header.data(), 128);
  EXPECT_NE(header.find("'shape': (3,)"), std::string::npos);  // NumPy's 1-tuple spelling
}

TEST(Npy, BooleanRoundTrip) {
  testing::temp_dir dir;
  bool_tensor m({2, 2}, {1, 0, 0, 1});
  write_npy(dir.file("m.npy"), m);
  const npy_array a = read_npy(dir.file("m.npy"));
  ASSERT_TRUE(std::holds_alternative<bool_tensor>(a));
  EXPECT_EQ(std::get<bool_tensor>(a).values()[1], 0);
  EXPECT_THROW(read_npy_float(dir.file("m.npy")), error);
}

TEST(Npy, Float64IsConvertedToFloat32) {
  testing::temp_dir dir;
  const double values[2] = {0.1, -2.5};
  write_file(dir.file("d.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
             std::string(reinterpret_cast<const char*>(values), 16));
  const tensor t = read_npy_float(dir.file("d.npy"));
  EXPECT_EQ(t[0], 0.1f);
  EXPECT_EQ(t[1], -2.5f);
}

TEST(Npy, HeaderVersionsTwoAndThree) {
  testing::temp_dir dir;
  const float values[2] = {1.0f, 2.0f};
  for (int major : {2, 3}) {
    const std::string path = dir.file(major == 2 ? "v2.npy" : "v3.npy");
    write_file(path, major, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }",
               std::string(reinterpret_cast<const char*>(values), 8));
    const tensor t = read_npy_float(path);
    EXPECT_EQ(t.shape(), (shape_t{1, 2}));
    EXPECT_EQ(t[1], 2.0f);
  }
}

TEST(Npy, RefusesWhatItCannotRead) {
  testing::temp_dir dir;
  const auto refused = [&](const std::string& name, int major, const std::string& dict,
                           size_t bytes, const std::string& needle) {
    write_file(dir.file(name), major, dict, std::string(bytes, '\0'));
    try {
      read_npy(dir.file(name));
      ADD_FAILURE() << name << " was accepted";
    } catch (const error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  refused("version4.npy", 4, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4,
          "version 4");
  refused("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16,
          "Fortran");
  refused("big.npy", 1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", 16,
          "big-endian");
  refused("short_ints.npy", 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", 4,
          "unsupported dtype '<i2'");
  refused("short.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 2), }", 12,
          "truncated");
  std::ofstream(dir.file("empty.npy"));
  EXPECT_THROW(read_npy(dir.file("empty.npy")), error);
  EXPECT_THROW(read_npy(dir.file("absent.npy")), error);
}

// Headers NumPy would read differently, or not at all, and sizes that wrap around: refused by the
// parser itself, with the reason.
TEST(Npy, RefusesMisleadingHeadersAndWrappingSizes) {
  const auto header = [](const std::string& dict, size_t bytes) {
    return testing::npy_bytes(dict, std::string(bytes, '\0'));
  };
  const auto refused = [&](const std::string& dict, size_t bytes, const std::string& needle) {
    try {
      parse_npy(header(dict, bytes), "x.npy");
      ADD_FAILURE() << dict << " was accepted";
    } catch (const error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("x.npy"), std::string::npos) << e.what();
    }
  };
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': ";
  refused(f4 + "(1, 2, 4.9, 8), }", 256, "not a plain integer");
  refused("{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8,
          "'descr' twice");
  refused(f4 + "(2,), 'shape': (2,), }", 8, "'shape' twice");
  refused(f4 + "(2,), 'extra': 0, }", 8, "unexpected key 'extra'");
  refused("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8, "True or False");
  refused(f4 + "(2,), } trailing", 8, "after the header dict");
  refused(f4 + "(5), }", 20, "(n,)");
  refused(f4 + "(-1,), }", 4, "integers >= 0");
  refused(f4 + "(2147483648, 2147483648, 4, 1), }", 16, "64 bits");
  refused(f4 + "(1, 1, 7, 7905747460161236407), }", 4, "64 bits");
  refused(f4 + "(4611686018427387904,), }", 4, "truncated");
  refused(f4 + "(99999999999999999999,), }", 4, "exceeds int64");
  refused(f4 + "(2,), }", 12, "bytes after the data");
  // The accepted neighbours: a 1-tuple with its comma, a trailing comma, double quotes, ().
  EXPECT_EQ(std::get<tensor>(parse_npy(header(f4 + "(3,), }", 12), "ok")).shape(), (shape_t{3}));
  EXPECT_EQ(std::get<tensor>(parse_npy(header(f4 + "(1, 3,)}", 12), "ok")).shape(),
            (shape_t{1, 3}));
  EXPECT_EQ(std::get<tensor>(parse_npy(header("{\"descr\": \"<f4\", \"fortran_order\": False, "
                                              "\"shape\": ()}",
                                              4),
                                       "ok"))
                .numel(),
            1);
}

TEST(Npy, ReadsRegularFilesOnly) {
  testing::temp_dir dir;
  const auto refused = [](const std::string& path, const std::string& needle) {
    try {
      read_npy(path);
      ADD_FAILURE() << path << " was accepted";
    } catch (const error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  refused(dir.path(), "a directory");
  refused("/dev/zero", "a device");
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0644), 0);
  refused(dir.file("fifo"), "a FIFO");  // returns at once: a FIFO is never opened
  refused(dir.file("absent.npy"), "No such file");
}

}  // namespace
}  // namespace qkv::io
