// Golden-case loading.
#include "support/golden.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>

#include "qkv/io/npy.hpp"

namespace qkv::testing {

std::string data_path(const std::string& relative) {
  return std::string(QKV_TEST_DATA) + "/" + relative;
}

namespace {
float number(const nlohmann::json& x) {
  if (x.is_string()) {
    const std::string s = x.get<std::string>();
    if (s == "NaN") return std::numeric_limits<float>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<float>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<float>::infinity();
    throw std::runtime_error("golden: bad number " + s);
  }
  return static_cast<float>(x.get<double>());
}
}  // namespace

tensor tensor_from_json(const nlohmann::json& t) {
  shape_t shape = t.at("shape").get<shape_t>();
  std::vector<float> data;
  data.reserve(t.at("data").size());
  for (const auto& x : t.at("data")) data.push_back(number(x));
  return tensor(shape, std::move(data));
}

bool_tensor bool_tensor_from_json(const nlohmann::json& t) {
  shape_t shape = t.at("shape").get<shape_t>();
  std::vector<uint8_t> data;
  for (const auto& x : t.at("data")) data.push_back(x.get<bool>() ? 1 : 0);
  return bool_tensor(shape, std::move(data));
}

bool golden_case::has_input(const std::string& name) const {
  return data().contains("inputs") && data()["inputs"].contains(name);
}
tensor golden_case::input(const std::string& name) const {
  return tensor_from_json(data().at("inputs").at(name));
}
bool_tensor golden_case::input_bool(const std::string& name) const {
  return bool_tensor_from_json(data().at("inputs").at(name));
}
bool golden_case::has_expected(const std::string& name) const {
  return data().at("expected").contains(name);
}
tensor golden_case::expected(const std::string& name) const {
  return tensor_from_json(data().at("expected").at(name));
}

sdpa_options golden_case::sdpa_options_for() const {
  sdpa_options o;
  const auto& p = data().at("params");
  if (!p.value("scale_is_default", true)) o.scale = p.at("scale").get<float>();
  if (p.contains("causal") && !p["causal"].is_null()) {
    const std::string c = p["causal"].get<std::string>();
    o.causal = c == "top_left" ? causal_mode::top_left : causal_mode::bottom_right;
  }
  if (has_input("attn_mask_bool")) o.mask.boolean = input_bool("attn_mask_bool");
  if (has_input("attn_mask_additive")) o.mask.additive = input("attn_mask_additive");
  // The score modifiers of the sdpa_ext kinds.
  if (p.contains("window") && !p["window"].is_null())
    o.modifiers.window =
        attention_window{p["window"][0].get<int64_t>(), p["window"][1].get<int64_t>()};
  if (p.contains("softcap") && !p["softcap"].is_null())
    o.modifiers.softcap = p["softcap"].get<float>();
  if (has_input("alibi_slopes")) o.modifiers.alibi_slopes = input("alibi_slopes");
  if (has_input("sinks")) o.modifiers.sinks = input("sinks");
  return o;
}

std::map<std::string, tensor> golden_case::state_dict() const {
  std::map<std::string, tensor> dict;
  for (const auto& [name, t] : data().at("weights").items()) {
    std::string key = name;
    if (key == "out_proj_weight") key = "out_proj.weight";
    if (key == "out_proj_bias") key = "out_proj.bias";
    dict.emplace(key, tensor_from_json(t));
  }
  return dict;
}

const nlohmann::json& golden_case::data() const {
  if (!json_) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("golden: cannot read " + file);
    json_ = std::make_shared<const nlohmann::json>(nlohmann::json::parse(in));
  }
  return *json_;
}

namespace {
// Every golden case named by index.json, sorted by id. Test suites ask for their kinds at static
// initialisation, in every one of the hundreds of test processes ctest starts, so only the
// index is parsed here; a case's file is parsed when a test reads it. A file the index does not
// list is an error, so that no case is silently skipped.
const std::vector<golden_case>& all_golden_cases() {
  static const std::vector<golden_case> cases = [] {
    const std::string dir = data_path("golden");
    std::ifstream in(dir + "/index.json");
    const nlohmann::json index = nlohmann::json::parse(in);
    std::vector<golden_case> all;
    std::set<std::string> listed;
    for (const auto& entry : index.at("cases")) {
      golden_case c;
      c.id = entry.at("id").get<std::string>();
      c.kind = entry.value("kind", "");
      c.category = entry.value("category", "");
      c.file = dir + "/" + entry.at("file").get<std::string>();
      listed.insert(entry.at("file").get<std::string>());
      all.push_back(std::move(c));
    }
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      const auto name = entry.path().filename().string();
      if (entry.path().extension() == ".json" && name != "index.json" && !listed.count(name))
        throw std::runtime_error("golden: " + name + " is not listed in index.json");
    }
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return all;
  }();
  return cases;
}
}  // namespace

std::vector<golden_case> load_golden(const std::string& kind) {
  std::vector<golden_case> cases;
  for (const golden_case& c : all_golden_cases())
    if (c.kind == kind) cases.push_back(c);
  return cases;
}

std::vector<golden_case> load_golden(std::initializer_list<const char*> kinds) {
  std::vector<golden_case> cases;
  for (const char* kind : kinds)
    for (auto& c : load_golden(std::string(kind))) cases.push_back(std::move(c));
  return cases;
}

std::string test_name(std::string text) {
  for (char& ch : text)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return text;
}

double max_abs_diff(const tensor& a, const tensor& b) {
  if (a.shape() != b.shape()) return std::numeric_limits<double>::infinity();
  double worst = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a[i], y = b[i];
    if (std::isnan(x) || std::isnan(y)) {
      if (!(std::isnan(x) && std::isnan(y))) return std::numeric_limits<double>::infinity();
      continue;
    }
    if (x == y) continue;
    worst = std::max(worst, std::fabs(x - y));
  }
  return worst;
}

double max_abs(const tensor& a) {
  double m = 0.0;
  for (float x : a.values())
    if (std::isfinite(x)) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

double golden_tolerance(const golden_case& c, const tensor& expected, double base) {
  const double m = max_abs(expected);
  return base * (c.category == "g_tiny" ? m : std::max(1.0, m));
}

tensor nan_to_zero(tensor t) {
  for (float& x : t.values())
    if (std::isnan(x)) x = 0.0f;
  return t;
}

void write_golden_npy(const nlohmann::json& t, const std::string& path) {
  if (t.at("dtype") == "bool")
    io::write_npy(path, bool_tensor_from_json(t));
  else
    io::write_npy(path, tensor_from_json(t));
}

std::vector<std::string> golden_input_flags(const golden_case& c, const std::string& dir,
                                            const std::vector<std::string>& names) {
  std::vector<std::string> flags;
  for (const std::string& name : names) {
    if (!c.has_input(name)) continue;
    const std::string path = dir + "/" + name + ".npy";
    write_golden_npy(c.data().at("inputs").at(name), path);
    std::string flag = "--" + name;
    std::replace(flag.begin(), flag.end(), '_', '-');
    flags.insert(flags.end(), {flag, path});
  }
  return flags;
}

std::vector<std::string> golden_input_flags(const golden_case& c, const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& item : c.data().at("inputs").items()) names.push_back(item.key());
  return golden_input_flags(c, dir, names);
}

}  // namespace qkv::testing
