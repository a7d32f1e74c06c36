// The hostile-input battery: malformed, extreme and misleading inputs fed to every command, as a
// hostile user would. Each case runs the built qkv on files generated in a fresh folder and
// asserts the contract for bad input: exit code 2, a message naming the argument (and the rule),
// no crash or hang (a timeout ends a hung run), and the folder exactly as it was before the run:
// no output, no temporary file, and every file that existed (an earlier output included) intact.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>

#include "qkv/io/npy.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "qkv/nn/transformer_encoder_layer.hpp"
#include "support/cli.hpp"
#include "support/raw_files.hpp"

namespace qkv {
namespace {

using args_t = std::vector<std::string>;
using testing::npy_bytes;
using testing::safetensors_bytes;
using testing::temp_dir;

// --- Files, byte for byte --------------------------------------------------------------------

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A float32 .npy whose header says `shape_text` (a Python tuple, as written) and holds `floats`.
std::string npy_f4(const std::string& shape_text, size_t floats) {
  return npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text + ", }",
                   std::string(floats * 4, '\0'));
}

// --- The valid inputs every case starts from --------------------------------------------------

tensor random_tensor(shape_t shape, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  tensor t(std::move(shape));
  for (float& x : t.values()) x = u(rng);
  return t;
}

// q/k/v/g for sdpa ([1,2,3,4] queries, 5 keys), x.npy [1,3,4] for mha and the encoder (E = 4),
// mha.safetensors and enc.safetensors (2 heads), and the explain matrices.
void write_valid_inputs(const temp_dir& dir) {
  io::write_npy(dir.file("q.npy"), random_tensor({1, 2, 3, 4}, 1));
  io::write_npy(dir.file("k.npy"), random_tensor({1, 2, 5, 4}, 2));
  io::write_npy(dir.file("v.npy"), random_tensor({1, 2, 5, 4}, 3));
  io::write_npy(dir.file("g.npy"), random_tensor({1, 2, 3, 4}, 4));
  io::write_npy(dir.file("x.npy"), random_tensor({1, 3, 4}, 5));
  io::write_npy(dir.file("ex.npy"), random_tensor({3, 4}, 6));
  for (const char* w : {"wq.npy", "wk.npy", "wv.npy"})
    io::write_npy(dir.file(w), random_tensor({2, 4}, 7));
  std::mt19937_64 rng(8);
  nn::state_dict mha, enc;
  nn::multihead_attention({.embed_dim = 4, .num_heads = 2}, rng).save(mha, "");
  io::write_safetensors(dir.file("mha.safetensors"), mha);
  nn::transformer_encoder_layer({.d_model = 4, .nhead = 2, .dim_feedforward = 8}, rng)
      .save(enc, "");
  io::write_safetensors(dir.file("enc.safetensors"), enc);
}

args_t sdpa(const temp_dir& d) {
  return {"sdpa",          "--q", d.file("q.npy"),  "--k", d.file("k.npy"), "--v",
          d.file("v.npy"), "-o",  d.file("out.npy")};
}
args_t sdpa_grad(const temp_dir& d) {
  args_t a = sdpa(d);
  a.insert(a.end(), {"--grad-out", d.file("g.npy"), "--dq", d.file("dq.npy"), "--dk",
                     d.file("dk.npy"), "--dv", d.file("dv.npy")});
  return a;
}
args_t mha(const temp_dir& d) {
  return {"mha",           "--weights", d.file("mha.safetensors"), "--heads", "2", "--query",
          d.file("x.npy"), "-o",        d.file("out.npy")};
}
args_t encoder(const temp_dir& d) {
  return {"layer", "encoder",       "--weights", d.file("enc.safetensors"), "--heads", "2",
          "--src", d.file("x.npy"), "-o",        d.file("out.npy")};
}
args_t explain(const temp_dir& d) {
  return {"explain",        "--x",  d.file("ex.npy"), "--wq",  d.file("wq.npy"), "--wk",
          d.file("wk.npy"), "--wv", d.file("wv.npy"), "--svg", d.file("out.svg")};
}

// `args` with `flag` set to `value` (replaced, or appended when absent).
args_t with(args_t args, const std::string& flag, const std::string& value) {
  const auto it = std::find(args.begin(), args.end(), flag);
  if (it == args.end())
    args.insert(args.end(), {flag, value});
  else
    *(it + 1) = value;
  return args;
}

// --- Cases -------------------------------------------------------------------------------------

struct hostile_case {
  std::string name;
  // Writes the case's own files into the folder (beside the valid inputs); returns the command.
  std::function<args_t(const temp_dir&)> setup;
  std::vector<std::string> needles;  // in stderr: the flag first, then words of the rule
  testing::environment env = {};
  int exit_code = 2;
};

// A command whose `flag` reads the file `bytes` (written as `file`).
std::function<args_t(const temp_dir&)> file_case(std::function<args_t(const temp_dir&)> command,
                                                 std::string flag, std::string bytes,
                                                 std::string file = "bad") {
  return [=](const temp_dir& d) {
    write_bytes(d.file(file), bytes);
    return with(command(d), flag, d.file(file));
  };
}

// A command with `flag` set to `value` literally.
std::function<args_t(const temp_dir&)> flag_case(std::function<args_t(const temp_dir&)> command,
                                                 std::string flag, std::string value) {
  return [=](const temp_dir& d) { return with(command(d), flag, value); };
}

// Malformed .npy files: each refused wherever a .npy is read.
std::vector<std::pair<std::string, std::string>> bad_npy_files() {
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': ";
  return {
      {"ShapeWrapsToZero", npy_f4("(2147483648, 2147483648, 4, 1)", 4)},
      {"ShapeWrapsToOne", npy_f4("(1, 1, 7, 7905747460161236407)", 1)},
      {"BytesWrapF4", npy_f4("(4611686018427387904,)", 1)},
      {"BytesWrapF8", npy_bytes("{'descr': '<f8', 'fortran_order': False, "
                                "'shape': (2305843009213693952,), }",
                                std::string(8, '\0'))},
      {"ShapeBeyondInt64", npy_f4("(99999999999999999999,)", 1)},
      {"FloatShapeEntry", npy_f4("(1, 2, 4.9, 8)", 64)},
      {"ExponentShapeEntry", npy_f4("(1e3,)", 1000)},
      {"HexShapeEntry", npy_f4("(0x10,)", 16)},
      {"NegativeShapeEntry", npy_f4("(-1, 4)", 4)},
      {"ShapeNotATuple", npy_f4("(5)", 5)},
      {"ShapeUnterminated", npy_bytes(f4 + "(1, 2, }", std::string(8, '\0'))},
      {"ShapeAsList", npy_f4("[2, 2]", 4)},
      {"DescrTwice",
       npy_bytes("{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                 std::string(8, '\0'))},
      {"ShapeTwice", npy_bytes(f4 + "(2,), 'shape': (4,), }", std::string(16, '\0'))},
      {"FortranOrderTwice",
       npy_bytes("{'descr': '<f4', 'fortran_order': False, 'fortran_order': True, "
                 "'shape': (2,), }",
                 std::string(8, '\0'))},
      {"FortranOrderNotBool",
       npy_bytes("{'descr': '<f4', 'fortran_order': 1, 'shape': (2,), }", std::string(8, '\0'))},
      {"FortranOrderTrue",
       npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", std::string(8, '\0'))},
      {"UnknownKey", npy_bytes(f4 + "(2,), 'extra': 1, }", std::string(8, '\0'))},
      {"MissingShape",
       npy_bytes("{'descr': '<f4', 'fortran_order': False, }", std::string(8, '\0'))},
      {"TextAfterDict", npy_bytes(f4 + "(2,), } junk", std::string(8, '\0'))},
      {"NotADict", npy_bytes("['descr', '<f4']", std::string(8, '\0'))},
      {"DataTruncated", npy_f4("(5, 2)", 3)},
      {"DataTrailing", npy_f4("(2, 2)", 5)},
      {"IntegerDtype", npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                                 std::string(8, '\0'))},
      {"BigEndian", npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                              std::string(8, '\0'))},
      {"Version4", npy_bytes(f4 + "(2,), }", std::string(8, '\0'), 4)},
      {"NoMagic", std::string("PK\x03\x04 not a numpy file at all")},
      {"Empty", std::string()},
      {"HeaderBeyondFile", std::string("\x93NUMPY\x01\x00\xff\xff{'descr'", 17)},
  };
}

// Every flag that reads a .npy file, with the command it belongs to.
std::vector<std::tuple<std::string, std::function<args_t(const temp_dir&)>, std::string>>
npy_readers() {
  return {{"SdpaQ", sdpa, "--q"},
          {"SdpaK", sdpa, "--k"},
          {"SdpaV", sdpa, "--v"},
          {"SdpaMask", sdpa, "--mask"},
          {"SdpaGradOut", sdpa_grad, "--grad-out"},
          {"MhaQuery", mha, "--query"},
          {"MhaKeyPaddingMask", mha, "--key-padding-mask"},
          {"MhaAttnMask", mha, "--attn-mask"},
          {"EncoderSrc", encoder, "--src"},
          {"EncoderSrcMask", encoder, "--src-mask"},
          {"ExplainX", explain, "--x"},
          {"ExplainWq", explain, "--wq"}};
}

std::vector<hostile_case> npy_cases() {
  std::vector<hostile_case> cases;
  // Every malformed file through --q of sdpa; the message names --q and the file.
  for (const auto& [name, bytes] : bad_npy_files())
    cases.push_back({"SdpaQ" + name, file_case(sdpa, "--q", bytes, "bad.npy"), {"--q", "bad.npy"}});
  // A sample of them through every other flag that reads a .npy.
  const std::string wraps = npy_f4("(2147483648, 2147483648, 4, 1)", 4);
  const std::string twice =
      npy_bytes("{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                std::string(8, '\0'));
  const std::string fractional = npy_f4("(1, 2, 4.9, 8)", 64);
  for (const auto& [prefix, command, flag] : npy_readers()) {
    if (prefix == "SdpaQ") continue;  // every file above
    cases.push_back({prefix + "ShapeWraps", file_case(command, flag, wraps), {flag}});
    cases.push_back({prefix + "DescrTwice", file_case(command, flag, twice), {flag, "twice"}});
    cases.push_back({prefix + "FloatShapeEntry", file_case(command, flag, fractional), {flag}});
  }
  return cases;
}

// Inputs that are not regular files: a directory, an endless device, a FIFO with no writer (it
// would block forever if opened), a dangling path, a symbolic link to a directory.
std::vector<hostile_case> not_a_file_cases() {
  std::vector<hostile_case> cases;
  auto readers = npy_readers();
  readers.push_back({"MhaWeights", mha, "--weights"});
  readers.push_back({"EncoderWeights", encoder, "--weights"});
  for (const auto& [prefix, command, flag] : readers) {
    const auto cmd = command;
    const std::string f = flag;
    cases.push_back({prefix + "Directory",
                     [=](const temp_dir& d) {
                       ::mkdir(d.file("folder").c_str(), 0755);
                       return with(cmd(d), f, d.file("folder"));
                     },
                     {f, "directory"}});
    cases.push_back({prefix + "DevZero", flag_case(cmd, f, "/dev/zero"), {f, "device"}});
    cases.push_back({prefix + "Fifo",
                     [=](const temp_dir& d) {
                       ::mkfifo(d.file("fifo").c_str(), 0644);
                       return with(cmd(d), f, d.file("fifo"));
                     },
                     {f, "FIFO"}});
    cases.push_back(
        {prefix + "Missing", flag_case(cmd, f, "/nonexistent/in.npy"), {f, "No such file"}});
    cases.push_back({prefix + "LinkToDirectory",
                     [=](const temp_dir& d) {
                       ::mkdir(d.file("folder").c_str(), 0755);
                       ::symlink(d.file("folder").c_str(), d.file("link").c_str());
                       return with(cmd(d), f, d.file("link"));
                     },
                     {f, "directory"}});
  }
  return cases;
}

// Malformed or extreme .safetensors weights.
std::vector<hostile_case> safetensors_cases() {
  const auto entry = [](const std::string& name, const std::string& shape, uint64_t b, uint64_t e) {
    return "\"" + name + "\": {\"dtype\": \"F32\", \"shape\": " + shape + ", \"data_offsets\": [" +
           std::to_string(b) + ", " + std::to_string(e) + "]}";
  };
  const std::string w = entry("out_proj.weight", "[2, 2]", 0, 16);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"DuplicateTensorName",
       safetensors_bytes("{" + w + ", " + entry("out_proj.weight", "[1, 1]", 16, 20) + "}",
                         std::string(20, '\0'))},
      {"DuplicateShapeKey",
       safetensors_bytes("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"shape\": [2], "
                         "\"data_offsets\": [0, 8]}}",
                         std::string(8, '\0'))},
      {"ShapeWraps",
       safetensors_bytes("{" + entry("a", "[2147483648, 2147483648, 4, 1]", 0, 0) + "}", "")},
      {"ShapeWrapsToOne",
       safetensors_bytes("{" + entry("a", "[1, 1, 7, 7905747460161236407]", 0, 4) + "}",
                         std::string(4, '\0'))},
      {"ShapeBeyondInt64", safetensors_bytes("{" + entry("a", "[9223372036854775808]", 0, 4) + "}",
                                             std::string(4, '\0'))},
      {"NegativeShape", safetensors_bytes("{" + entry("a", "[-1]", 0, 4) + "}", std::string(4, 0))},
      {"FloatShape", safetensors_bytes("{" + entry("a", "[4.5]", 0, 16) + "}", std::string(16, 0))},
      {"GapInData", safetensors_bytes("{" + entry("a", "[1]", 4, 8) + "}", std::string(8, '\0'))},
      {"TrailingData", safetensors_bytes("{" + w + "}", std::string(24, '\0'))},
      {"Overlap",
       safetensors_bytes("{" + w + ", " + entry("b", "[2]", 8, 16) + "}", std::string(16, 0))},
      {"OutOfRange", safetensors_bytes("{" + w + "}", std::string(8, '\0'))},
      {"HeaderBeyondFile", std::string("\xff\xff\xff\x00\x00\x00\x00\x00{}", 10)},
      {"NotJson", safetensors_bytes("{\"a\": ", "")},
      {"NotAnObject", safetensors_bytes("[1, 2]", "")},
      {"MetadataNotObject", safetensors_bytes("{\"__metadata__\": 3}", "")},
      {"OffsetsNotIntegers",
       safetensors_bytes(
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4.0]}}",
           std::string(4, 0))},
      {"IntegerDtype",
       safetensors_bytes("{\"a\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}",
                         std::string(8, 0))},
      {"ShorterThanLength", std::string("\x01\x02", 2)},
  };
  std::vector<hostile_case> cases;
  for (const auto& [name, bytes] : files) {
    cases.push_back({"MhaWeights" + name,
                     file_case(mha, "--weights", bytes, "w.safetensors"),
                     {"--weights", "w.safetensors"}});
    cases.push_back({"EncoderWeights" + name,
                     file_case(encoder, "--weights", bytes, "w.safetensors"),
                     {"--weights", "w.safetensors"}});
  }
  // A zero embedding dimension (E = 0) divided by before: refused, no SIGFPE.
  nn::state_dict zero;
  for (const char* name : {"in_proj_weight", "out_proj.weight"}) zero[name] = tensor({0, 0});
  for (const char* name : {"in_proj_bias", "out_proj.bias"}) zero[name] = tensor({0});
  const std::string zero_bytes = io::serialize_safetensors(zero);
  cases.push_back({"MhaZeroEmbedDim",
                   [=](const temp_dir& d) {
                     write_bytes(d.file("w.safetensors"), zero_bytes);
                     io::write_npy(d.file("x0.npy"), tensor({1, 3, 0}));
                     return with(with(mha(d), "--weights", d.file("w.safetensors")), "--query",
                                 d.file("x0.npy"));
                   },
                   {"--weights", "E"}});
  nn::state_dict enc_zero;
  for (const auto& [name, t] : zero) enc_zero["self_attn." + name] = t;
  const std::string enc_zero_bytes = io::serialize_safetensors(enc_zero);
  cases.push_back({"EncoderZeroEmbedDim",
                   [=](const temp_dir& d) {
                     write_bytes(d.file("w.safetensors"), enc_zero_bytes);
                     io::write_npy(d.file("x0.npy"), tensor({1, 3, 0}));
                     return with(with(encoder(d), "--weights", d.file("w.safetensors")), "--src",
                                 d.file("x0.npy"));
                   },
                   {"--weights", "E"}});
  return cases;
}

// Outputs: two flags naming one file, outputs that cannot be files, and a failing run that must
// leave an earlier output untouched.
std::vector<hostile_case> output_cases() {
  const auto precious = [](const temp_dir& d) { write_bytes(d.file("out.npy"), "precious"); };
  return {
      {"SdpaOutAndLseSamePath",
       [](const temp_dir& d) { return with(sdpa(d), "--lse", d.file("out.npy")); },
       {"--lse", "same file", "--out"}},
      {"SdpaOutAndLseSameFileDotSlash",
       [](const temp_dir& d) { return with(sdpa(d), "--lse", d.path() + "/./out.npy"); },
       {"--lse", "same file"}},
      {"SdpaOutAndLseSameFileThroughLink",
       [](const temp_dir& d) {
         ::mkdir(d.file("sub").c_str(), 0755);
         ::symlink(d.file("sub").c_str(), d.file("alias").c_str());
         return with(with(sdpa(d), "-o", d.file("sub/o.npy")), "--lse", d.file("alias/o.npy"));
       },
       {"--lse", "same file"}},
      {"SdpaGradsOnePath",
       [](const temp_dir& d) {
         return with(with(sdpa_grad(d), "--dk", d.file("dq.npy")), "--dv", d.file("dq.npy"));
       },
       {"--dk", "same file", "--dq"}},
      {"SdpaDvSameAsOut",
       [](const temp_dir& d) { return with(sdpa_grad(d), "--dv", d.file("out.npy")); },
       {"--dv", "same file"}},
      {"SdpaOutIsDirectory",
       [](const temp_dir& d) {
         ::mkdir(d.file("folder").c_str(), 0755);
         return with(sdpa(d), "-o", d.file("folder"));
       },
       {"--out", "directory"}},
      {"SdpaOutIsFifo",
       [](const temp_dir& d) {
         ::mkfifo(d.file("fifo").c_str(), 0644);
         return with(sdpa(d), "-o", d.file("fifo"));
       },
       {"--out", "not a regular file"}},
      {"SdpaLseFolderMissingKeepsEarlierOut",
       [=](const temp_dir& d) {
         precious(d);
         return with(sdpa(d), "--lse", "/nonexistent-folder/l.npy");
       },
       {"--lse", "/nonexistent-folder"}},
      {"SdpaLseIsDirectoryKeepsEarlierOut",
       [=](const temp_dir& d) {
         precious(d);
         ::mkdir(d.file("folder").c_str(), 0755);
         return with(sdpa(d), "--lse", d.file("folder"));
       },
       {"--lse", "directory"}},
      {"SdpaBadInputKeepsEarlierOut",
       [=](const temp_dir& d) {
         precious(d);
         write_bytes(d.file("bad.npy"), npy_f4("(1, 2, 4.9, 8)", 64));
         return with(sdpa(d), "--q", d.file("bad.npy"));
       },
       {"--q"}},
      {"MhaOutAndWeightsOnePath",
       [](const temp_dir& d) { return with(mha(d), "--attn-weights", d.file("out.npy")); },
       {"--attn-weights", "same file"}},
      {"MhaOutFolderMissing",
       flag_case(mha, "-o", "/nonexistent-folder/o.npy"),
       {"--out", "/nonexistent-folder"}},
      {"EncoderOutIsDirectory",
       [](const temp_dir& d) {
         ::mkdir(d.file("folder").c_str(), 0755);
         return with(encoder(d), "-o", d.file("folder"));
       },
       {"--out", "directory"}},
      {"ExplainSvgAndHtmlOnePath",
       [](const temp_dir& d) { return with(explain(d), "--html", d.file("out.svg")); },
       {"--html", "same file", "--svg"}},
  };
}

// Numbers on the command line: out of range, not finite, not numbers, beyond their type.
std::vector<hostile_case> number_cases() {
  std::vector<hostile_case> cases;
  const auto add = [&](const std::string& name, std::function<args_t(const temp_dir&)> command,
                       const std::string& flag, const std::string& value) {
    cases.push_back({name, flag_case(command, flag, value), {flag, value}});
  };
  for (const auto& [value, name] :
       std::vector<std::pair<std::string, std::string>>{{"99999999999", "Huge"},
                                                        {"100000", "HundredThousand"},
                                                        {"1025", "AboveLimit"},
                                                        {"-1", "Negative"},
                                                        {"abc", "NotANumber"},
                                                        {"1.5", "Fraction"},
                                                        {"1e3", "Exponent"},
                                                        {"", "Empty"},
                                                        {" 4", "LeadingSpace"}}) {
    add("SdpaThreads" + name, sdpa, "--threads", value);
    add("MhaThreads" + name, mha, "--threads", value);
  }
  add("EncoderThreadsHuge", encoder, "--threads", "99999999999");
  add(
      "GenerateThreadsHuge",
      [](const temp_dir& d) {
        return args_t{"generate", "--checkpoint", d.file("none")};
      },
      "--threads", "2000");
  cases.push_back({"BenchThreadsHuge",
                   flag_case(
                       [](const temp_dir&) {
                         return args_t{"bench", "--quick"};
                       },
                       "--threads", "1,99999999999"),
                   {"--threads", "'99999999999'"}});
  add(
      "BenchThreadsZero",
      [](const temp_dir&) {
        return args_t{"bench", "--quick"};
      },
      "--threads", "0");
  add("MhaHeadsBeyondInt64", mha, "--heads", "99999999999999999999");
  add("MhaHeadsZero", mha, "--heads", "0");
  add("MhaHeadsNegative", mha, "--heads", "-3");
  add("EncoderHeadsBeyondInt64", encoder, "--heads", "99999999999999999999");
  add("SdpaDropoutSeedNegative", sdpa, "--dropout-seed", "-1");
  add("SdpaDropoutSeedBeyond64Bits", sdpa, "--dropout-seed", "18446744073709551616");
  add("SdpaDropoutNan", sdpa, "--dropout", "nan");
  add("SdpaDropoutOne", sdpa, "--dropout", "1");
  add("SdpaDropoutNegative", sdpa, "--dropout", "-0.5");
  add("SdpaScaleInf", sdpa, "--scale", "inf");
  add("SdpaScaleNan", sdpa, "--scale", "nan");
  add("SdpaScaleZero", sdpa, "--scale", "0");
  add("SdpaScaleNegative", sdpa, "--scale", "-1");
  add("SdpaScaleBeyondFloat", sdpa, "--scale", "1e39");
  add("SdpaScaleText", sdpa, "--scale", "0.5x");
  add("EncoderEpsZero", encoder, "--eps", "0");
  add("EncoderEpsNan", encoder, "--eps", "nan");
  const auto generate = [](const temp_dir& d) {
    return args_t{"generate", "--checkpoint", d.file("none.safetensors")};
  };
  add("GenerateTokensNegative", generate, "--tokens", "-1");
  add("GenerateTemperatureNan", generate, "--temperature", "nan");
  add("GenerateTemperatureNegative", generate, "--temperature", "-1");
  add("GenerateTopKNegative", generate, "--top-k", "-2");
  add("GenerateSeedNegative", generate, "--seed", "-1");
  add(
      "ExplainLayerNegative", [](const temp_dir&) { return args_t{"explain"}; }, "--layer", "-1");
  add(
      "ExplainHeadHuge", [](const temp_dir&) { return args_t{"explain"}; }, "--head",
      "99999999999999999999");
  // QKV_NUM_THREADS is named as the environment variable it is, not as a flag.
  for (const auto& [value, name] : std::vector<std::pair<std::string, std::string>>{
           {"abc", "NotANumber"}, {"100000", "Huge"}, {"0", "Zero"}, {"-4", "Negative"}}) {
    cases.push_back({"SdpaEnvThreads" + name,
                     sdpa,
                     {"environment variable QKV_NUM_THREADS", value},
                     {{"QKV_NUM_THREADS", value}}});
  }
  return cases;
}

// Explain specs (JSON): values beyond fp32, a key given twice, the wrong shape of document.
std::vector<hostile_case> spec_cases() {
  const std::string rows = "[[1, 2], [3, 4]]";
  const auto spec = [&](const std::string& encodings, const std::string& extra) {
    return "{\"encodings\": " + encodings + ", \"W_q_weight\": " + rows +
           ", \"W_k_weight\": " + rows + ", \"W_v_weight\": " + rows + extra + "}";
  };
  const auto explain_spec = [](const temp_dir& d) {
    return args_t{"explain", "--spec", d.file("s.json"), "--svg", d.file("out.svg")};
  };
  std::vector<hostile_case> cases;
  for (const auto& [name, text, needle] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"BeyondFloat", spec("[[1e40, 0], [0, 1]]", ""), "encodings[0][0] = 1e+40"},
           {"KeyTwice", spec(rows, ", \"encodings\": [[9, 9], [9, 9]]"), "twice"},
           {"Ragged", spec("[[1, 2], [3]]", ""), "row 1"},
           {"NotANumber", spec("[[\"a\", 2], [3, 4]]", ""), "encodings[0][0]: expected a number"},
           {"NotAnObject", "[1, 2]", "object"},
           {"NotJson", "{\"encodings\": ", "not a valid explain spec"}})
    cases.push_back({"ExplainSpec" + name,
                     file_case(explain_spec, "--spec", text, "s.json"),
                     {"--spec", needle}});
  cases.push_back(
      {"ExplainSpecDirectory", flag_case(explain_spec, "--spec", "/tmp"), {"--spec", "directory"}});
  cases.push_back({"ExplainSpecFifo",
                   [=](const temp_dir& d) {
                     ::mkfifo(d.file("fifo").c_str(), 0644);
                     return with(explain_spec(d), "--spec", d.file("fifo"));
                   },
                   {"--spec", "FIFO"}});
  cases.push_back({"ExplainTokensCountNamesX",
                   [](const temp_dir& d) { return with(explain(d), "--tokens", "a b"); },
                   {"--tokens", "2 labels", "rows of X [3, 4]"}});
  return cases;
}

// Flags that do not go together.
std::vector<hostile_case> combination_cases() {
  return {
      {"SdpaRingLayoutWithoutRing",
       flag_case(sdpa, "--ring-layout", "zigzag"),
       {"--ring-layout", "--ring"}},
      {"SdpaDqWithoutGradOut", flag_case(sdpa, "--dq", "/tmp/never.npy"), {"--grad-out"}},
      {"SdpaGradOutWithoutOutputs",
       [](const temp_dir& d) { return with(sdpa(d), "--grad-out", d.file("g.npy")); },
       {"--grad-out", "--dq"}},
      {"MhaKeyWithoutValue",
       [](const temp_dir& d) { return with(mha(d), "--key", d.file("x.npy")); },
       {"--key"}},
      {"MhaPrefixMatchesNothing",
       flag_case(mha, "--prefix", "layers.9."),
       {"--prefix", "layers.9."}},
      {"MhaUnbatchedQueryBatchedKey",
       [](const temp_dir& d) {
         return with(with(with(mha(d), "--query", d.file("ex.npy")), "--key", d.file("x.npy")),
                     "--value", d.file("x.npy"));
       },
       {"--key", "unbatched"}},
      {"SdpaUnderMpirunWithoutRing", sdpa, {"--ring"}, {{"OMPI_COMM_WORLD_SIZE", "2"}}},
      {"MhaUnderMpirunWithoutRing", mha, {"--ring"}, {{"PMI_SIZE", "4"}}},
  };
}

std::vector<hostile_case> all_cases() {
  std::vector<hostile_case> all;
  for (auto part : {npy_cases(), not_a_file_cases(), safetensors_cases(), output_cases(),
                    number_cases(), spec_cases(), combination_cases()})
    for (auto& c : part) all.push_back(std::move(c));
  return all;
}

// Every regular file of the folder (recursively) and its bytes; FIFOs and folders by name only.
std::map<std::string, std::string> snapshot(const temp_dir& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    const std::string name = e.path().lexically_relative(dir.path()).string();
    files[name] = e.is_regular_file() && !e.is_symlink() ? slurp(e.path().string()) : "(other)";
  }
  return files;
}

// gtest prints a failing case by its name, not as bytes.
void PrintTo(const hostile_case& c, std::ostream* os) {
  *os << c.name;
}

class Hostile : public ::testing::TestWithParam<hostile_case> {};

TEST_P(Hostile, RefusedWithExitTwoNamingTheArgumentAndNoFileChanged) {
  const hostile_case& c = GetParam();
  temp_dir dir;
  write_valid_inputs(dir);
  const args_t args = c.setup(dir);
  const auto before = snapshot(dir);
  const testing::cli_result r = testing::run_qkv(args, c.env, /*timeout_seconds=*/60);
  EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
  EXPECT_EQ(r.err.rfind("qkv: error: ", 0), 0u) << r.err;  // one message, no abort banner
  for (const std::string& n : c.needles)
    EXPECT_NE(r.err.find(n), std::string::npos) << "missing '" << n << "' in: " << r.err;
  EXPECT_EQ(r.err.find("--QKV"), std::string::npos) << r.err;
  EXPECT_EQ(snapshot(dir), before) << "the run changed the folder (an output or a temporary file)";
}

INSTANTIATE_TEST_SUITE_P(Battery, Hostile, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<hostile_case>& info) {
                           return info.param.name;
                         });

// What the battery refuses must not be refused when it is right: the accepted neighbours.
TEST(HostileNeighbours, GradOutWithOnlyDqWritesOnlyDq) {
  temp_dir dir;
  write_valid_inputs(dir);
  const auto r = testing::run_qkv(
      with(with(sdpa(dir), "--grad-out", dir.file("g.npy")), "--dq", dir.file("dq.npy")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(testing::file_exists(dir.file("dq.npy")));
  EXPECT_FALSE(testing::file_exists(dir.file("dk.npy")));
  EXPECT_FALSE(testing::file_exists(dir.file("dv.npy")));
  EXPECT_EQ(io::read_npy_float(dir.file("dq.npy")).shape(), (shape_t{1, 2, 3, 4}));
}

TEST(HostileNeighbours, AnEarlierOutputIsReplacedOnSuccess) {
  temp_dir dir;
  write_valid_inputs(dir);
  write_bytes(dir.file("out.npy"), "precious");
  const auto r = testing::run_qkv(with(sdpa(dir), "--lse", dir.file("lse.npy")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(io::read_npy_float(dir.file("out.npy")).shape(), (shape_t{1, 2, 3, 4}));
  for (const std::string& name : testing::list_dir(dir.path()))
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
}

TEST(HostileNeighbours, ThreadsAtTheLimitAndLargestSeedAreAccepted) {
  temp_dir dir;
  write_valid_inputs(dir);
  const auto r = testing::run_qkv(
      with(with(sdpa(dir), "--threads", "3"), "--dropout-seed", "18446744073709551615"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(HostileNeighbours, MhaTakesOneModuleOutOfALargerStateDictAndAnUnbatchedQuery) {
  temp_dir dir;
  write_valid_inputs(dir);
  // The encoder's state_dict holds an MHA under "self_attn.": the same as that MHA alone.
  const nn::state_dict enc = io::read_safetensors(dir.file("enc.safetensors"));
  nn::state_dict alone;
  for (const auto& [name, t] : enc)
    if (name.rfind("self_attn.", 0) == 0) alone[name.substr(10)] = t;
  io::write_safetensors(dir.file("alone.safetensors"), alone);
  const auto batched = testing::run_qkv(with(mha(dir), "--weights", dir.file("alone.safetensors")));
  ASSERT_EQ(batched.exit_code, 0) << batched.err;
  const tensor expected = io::read_npy_float(dir.file("out.npy"));
  // Unbatched: X [3,4] (x.npy's one batch) with --prefix self_attn. on the whole encoder.
  tensor x = io::read_npy_float(dir.file("x.npy"));
  io::write_npy(dir.file("x2.npy"), x.reshaped({3, 4}));
  const auto r =
      testing::run_qkv({"mha", "--weights", dir.file("enc.safetensors"), "--prefix", "self_attn.",
                        "--heads", "2", "--query", dir.file("x2.npy"), "-o", dir.file("o2.npy")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const tensor got = io::read_npy_float(dir.file("o2.npy"));
  ASSERT_EQ(got.shape(), (shape_t{3, 4}));
  for (int64_t i = 0; i < got.numel(); ++i) EXPECT_EQ(got[i], expected[i]) << i;
}

TEST(HostileNeighbours, EveryHelpDescribesThreadsTheSameWay) {
  std::string first;
  for (const args_t& help : {args_t{"sdpa", "--help"}, args_t{"mha", "--help"},
                             args_t{"layer", "encoder", "--help"}, args_t{"generate", "--help"}}) {
    const auto r = testing::run_qkv(help);
    const size_t at = r.out.find("--threads");
    ASSERT_NE(at, std::string::npos) << r.out;
    const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    if (first.empty()) first = line;
    EXPECT_EQ(line, first);
  }
}

}  // namespace
}  // namespace qkv
