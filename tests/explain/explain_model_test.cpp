// `qkv explain --model DIR` on GPT-2 folders: every head's weights in the JSON against the golden
// folders' float64 attention (within each case.json's tolerance), --layer/--head, the text's most
// attended tokens, GPT-2's tokens shown as text, a 12-layer × 12-head folder in every format, and
// the refusals (exit 2, the flag named, no output file).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "qkv/io/npy.hpp"
#include "qkv/io/safetensors.hpp"
#include "support/cli.hpp"
#include "support/doc_example.hpp"
#include "support/golden.hpp"
#include "support/gpt3_encoder.hpp"
#include "support/random.hpp"

namespace qkv::testing {
namespace {

namespace fs = std::filesystem;
using rows_t = std::vector<std::vector<double>>;

constexpr const char* sentence = "jane visits africa";

std::string golden_folder(const std::string& name) {
  return data_path("golden/gpt2/" + name);
}

nlohmann::json explain_json(const std::vector<std::string>& args) {
  std::vector<std::string> all{"explain"};
  all.insert(all.end(), args.begin(), args.end());
  all.insert(all.end(), {"--format", "json"});
  const cli_result r = run_qkv(all);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

// Layer l, head h of an [L,H,T,T] tensor as rows.
rows_t head_of(const tensor& attention, int64_t l, int64_t h) {
  const int64_t H = attention.size(1), T = attention.size(2);
  rows_t rows(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j)
      rows[static_cast<size_t>(i)].push_back(attention[((l * H + h) * T + i) * T + j]);
  return rows;
}

double max_diff(const rows_t& a, const rows_t& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    EXPECT_EQ(a[i].size(), b[i].size());
    for (size_t j = 0; j < std::min(a[i].size(), b[i].size()); ++j)
      worst = std::max(worst, std::abs(a[i][j] - b[i][j]));
  }
  return worst;
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// A GPT-2 folder with random weights (seeded) in the hub's layout, and GPT-2's tokenizer files.
void write_random_folder(const std::string& dir, int64_t layers, int64_t heads, int64_t embed) {
  fs::create_directories(dir);
  const int64_t V = 50257, P = 32, E = embed;
  std::ofstream(dir + "/config.json") << nlohmann::json{{"model_type", "gpt2"},
                                                        {"vocab_size", V},
                                                        {"n_positions", P},
                                                        {"n_embd", E},
                                                        {"n_head", heads},
                                                        {"n_layer", layers},
                                                        {"activation_function", "gelu_new"}};
  std::mt19937_64 rng(7);
  io::named_tensors w;
  w["wte.weight"] = random_tensor({V, E}, rng, 0.5f);
  w["wpe.weight"] = random_tensor({P, E}, rng, 0.5f);
  const auto norm = [&](const std::string& name) {
    w[name + ".weight"] = tensor({E}, std::vector<float>(static_cast<size_t>(E), 1.0f));
    w[name + ".bias"] = tensor({E});
  };
  const auto conv = [&](const std::string& name, int64_t in, int64_t out, float stddev) {
    w[name + ".weight"] = random_tensor({in, out}, rng, stddev);
    w[name + ".bias"] = random_tensor({out}, rng, 0.1f);
  };
  for (int64_t l = 0; l < layers; ++l) {
    const std::string b = "h." + std::to_string(l) + ".";
    norm(b + "ln_1");
    conv(b + "attn.c_attn", E, 3 * E, 0.6f);  // large enough for heads that differ
    conv(b + "attn.c_proj", E, E, 0.2f);
    norm(b + "ln_2");
    conv(b + "mlp.c_fc", E, 4 * E, 0.2f);
    conv(b + "mlp.c_proj", 4 * E, E, 0.2f);
  }
  norm("ln_f");
  io::write_safetensors(dir + "/model.safetensors", w);
  ASSERT_TRUE(copy_gpt2_tokenizer_files(dir));
}

// Every head of both golden folders (ids from input_ids.npy; no tokenizer files, so each token
// is labelled #id): the weights equal the golden attention within the case's tolerance, and
// each query's most attended key is the golden row's largest weight.
TEST(ExplainModel, JsonWeightsAreTheGoldenAttention) {
  for (const std::string name : {"gpt2_tiny_E24_H3_L1_prefixed_f16", "gpt2_tiny_E32_H2_L2"}) {
    const std::string dir = golden_folder(name);
    const nlohmann::json c = nlohmann::json::parse(std::ifstream(dir + "/case.json"));
    const double tolerance = c["tolerance"]["attention_absolute"].get<double>();
    const tensor expected = io::read_npy_float(dir + "/expected_attention_float64.npy");
    const std::vector<int64_t> ids = io::read_npy_ids(dir + "/input_ids.npy");
    const int64_t L = expected.size(0), H = expected.size(1), T = expected.size(2);
    const nlohmann::json j = explain_json({"--model", dir, "--ids", dir + "/input_ids.npy"});
    ASSERT_EQ(j.at("heads").size(), static_cast<size_t>(L * H)) << name;
    EXPECT_EQ(j.at("schema_version"), 1);
    EXPECT_EQ(j.at("model"), nlohmann::json({{"layers", L}, {"heads", H}}));
    EXPECT_TRUE(j.at("causal").get<bool>());
    EXPECT_EQ(j.at("ids").get<std::vector<int64_t>>(), ids);
    std::string label = "#";  // the label of an id without tokenizer files
    label += std::to_string(ids[0]);
    EXPECT_EQ(j.at("tokens")[0], label);
    EXPECT_FALSE(j.contains("words"));  // GPT-2's views are by token
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        const nlohmann::json& head = j.at("heads")[static_cast<size_t>(l * H + h)];
        EXPECT_EQ(head.at("layer"), l);
        EXPECT_EQ(head.at("head"), h);
        const rows_t golden = head_of(expected, l, h);
        EXPECT_LE(max_diff(head.at("weights").get<rows_t>(), golden), tolerance)
            << name << " layer " << l << " head " << h;
        for (int64_t i = 0; i < T; ++i) {
          const std::vector<double>& row = golden[static_cast<size_t>(i)];
          std::vector<double> sorted = row;
          std::sort(sorted.rbegin(), sorted.rend());
          if (T > 1 && sorted[0] - sorted[1] <= 2 * tolerance) continue;  // a tie within rounding
          EXPECT_EQ(head.at("most_attended")[static_cast<size_t>(i)].at("key"),
                    std::max_element(row.begin(), row.end()) - row.begin())
              << name << " layer " << l << " head " << h << " query " << i;
        }
      }
    const rows_t rollout = j.at("rollout").at("weights").get<rows_t>();
    ASSERT_EQ(rollout.size(), static_cast<size_t>(T));
    for (const std::vector<double>& row : rollout) {
      double sum = 0;
      for (const double w : row) sum += w;
      EXPECT_NEAR(sum, 1.0, 1e-9);
    }
    EXPECT_NE(j.at("rollout").at("rule").get<std::string>().find("Abnar"), std::string::npos);
  }
}

TEST(ExplainModel, LayerAndHeadSelectTheShownHeads) {
  const std::string dir = golden_folder("gpt2_tiny_E32_H2_L2");
  const std::string ids = dir + "/input_ids.npy";
  const tensor expected = io::read_npy_float(dir + "/expected_attention_float64.npy");
  const nlohmann::json one =
      explain_json({"--model", dir, "--ids", ids, "--layer", "1", "--head", "0"});
  ASSERT_EQ(one.at("heads").size(), 1u);
  EXPECT_EQ(one.at("heads")[0].at("layer"), 1);
  EXPECT_EQ(one.at("heads")[0].at("head"), 0);
  EXPECT_LE(max_diff(one.at("heads")[0].at("weights").get<rows_t>(), head_of(expected, 1, 0)),
            1e-5);
  EXPECT_EQ(one.at("model"), nlohmann::json({{"layers", 2}, {"heads", 2}}));
  const nlohmann::json layer = explain_json({"--model", dir, "--ids", ids, "--layer", "1"});
  ASSERT_EQ(layer.at("heads").size(), 2u);
  EXPECT_EQ(layer.at("heads")[1].at("layer"), 1);
  EXPECT_EQ(layer.at("heads")[1].at("head"), 1);
  const nlohmann::json head = explain_json({"--model", dir, "--ids", ids, "--head", "1"});
  ASSERT_EQ(head.at("heads").size(), 2u);
  EXPECT_EQ(head.at("heads")[0].at("layer"), 0);
  EXPECT_EQ(head.at("heads")[1].at("layer"), 1);
  EXPECT_EQ(head.at("heads")[1].at("head"), 1);
  // The rollout is over every head, whatever is shown.
  EXPECT_EQ(one.at("rollout"), head.at("rollout"));
}

// With the tokenizer files, tokens are their text: GPT-2's " visits" is " visits" in the JSON
// and "␣visits" on the terminal; each row of the text's table is the query and, per head, the
// key of the golden row's largest weight with that weight to 2 decimals.
TEST(ExplainModel, TextShowsEachTokensMostAttendedTokenPerHead) {
  const temp_dir tmp;
  const std::string dir = tmp.file("gpt2");
  fs::copy(golden_folder("gpt2_tiny_E32_H2_L2"), dir);
  ASSERT_TRUE(copy_gpt2_tokenizer_files(dir));

  const nlohmann::json j = explain_json({"--model", dir, "--text", sentence});
  const std::vector<std::vector<int64_t>> reference = gpt3_encoder_ids({sentence});
  ASSERT_EQ(reference.size(), 1u);
  EXPECT_EQ(j.at("ids").get<std::vector<int64_t>>(), reference[0]);
  EXPECT_EQ(j.at("tokens"), nlohmann::json({"j", "ane", " visits", " af", "rica"}));
  const cli_result shown = run_qkv({"explain", "--model", dir, "--text", sentence});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("5 tokens; the model has 2 layers × 2 heads, causal"), std::string::npos)
      << shown.out;
  EXPECT_NE(shown.out.find("\u2423visits"), std::string::npos) << shown.out;

  const tensor expected = io::read_npy_float(dir + "/expected_attention_float64.npy");
  const std::vector<int64_t> ids = io::read_npy_ids(dir + "/input_ids.npy");
  const nlohmann::json golden_tokens =
      explain_json({"--model", dir, "--ids", dir + "/input_ids.npy"});
  for (int64_t l = 0; l < 2; ++l) {
    const cli_result r = run_qkv(
        {"explain", "--model", dir, "--ids", dir + "/input_ids.npy", "--layer", std::to_string(l)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The table's rows, as words: the query, then per head the key and its weight. (Display
    // labels hold no ASCII whitespace: a space shows as ␣.)
    std::vector<std::vector<std::string>> rows;
    std::istringstream lines(r.out.substr(r.out.find("\n  layer " + std::to_string(l) + " ") + 1));
    std::string line;
    std::getline(lines, line);
    for (size_t i = 0; i < ids.size() && std::getline(lines, line); ++i) {
      std::istringstream words(line);
      rows.emplace_back(std::istream_iterator<std::string>(words),
                        std::istream_iterator<std::string>());
    }
    ASSERT_EQ(rows.size(), ids.size()) << r.out;
    const nlohmann::json& labels = golden_tokens.at("tokens");
    const auto label_of = [&](size_t i) {
      // The terminal's label of the JSON token: a space as ␣ (these tokens have no other marks).
      std::string t = labels[i].get<std::string>();
      for (size_t at; (at = t.find(' ')) != std::string::npos;) t.replace(at, 1, "\u2423");
      return t;
    };
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_EQ(rows[i].size(), 5u) << line;
      EXPECT_EQ(rows[i][0], label_of(i));
      for (int64_t h = 0; h < 2; ++h) {
        const std::vector<double> row = head_of(expected, l, h)[i];
        const size_t key =
            static_cast<size_t>(std::max_element(row.begin(), row.end()) - row.begin());
        char weight[16];
        std::snprintf(weight, sizeof weight, "%.2f", row[key]);
        EXPECT_EQ(rows[i][1 + 2 * h], label_of(key)) << "layer " << l << " head " << h;
        EXPECT_EQ(rows[i][2 + 2 * h], weight) << "layer " << l << " head " << h;
      }
    }
  }
}

// GPT-2 small's shape of heads (12 layers × 12 heads) on a narrow random model: the text stays
// within 100 columns with every layer and head, the SVG draws every head with small cells, the
// HTML and the JSON hold all 144 heads, and no output loads anything from the network.
TEST(ExplainModel, TwelveLayersOfTwelveHeadsInEveryFormat) {
  const temp_dir tmp;
  const std::string dir = tmp.file("gpt2");
  write_random_folder(dir, 12, 12, 24);
  const cli_result r = run_qkv({"explain", "--model", dir, "--text", sentence, "--svg",
                                tmp.file("a.svg"), "--html", tmp.file("a.html")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  size_t widest = 0;
  for (std::string line; std::getline(lines, line);)
    widest =
        std::max(widest, static_cast<size_t>(std::count_if(line.begin(), line.end(), [](char c) {
                   return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
                 })));
  EXPECT_LE(widest, 100u) << r.out;
  for (int l = 0; l < 12; ++l)  // a layer's table is split to fit the width
    EXPECT_GE(count_of(r.out, "  layer " + std::to_string(l) + " "), 1u) << l << "\n" << r.out;
  EXPECT_EQ(count_of(r.out, "head 11"), 12u) << r.out;
  EXPECT_NE(r.out.find("the model has 12 layers × 12 heads"), std::string::npos);

  const std::string svg = read_text(tmp.file("a.svg")), html = read_text(tmp.file("a.html"));
  EXPECT_EQ(count_of(svg, "<rect class=\"cell"), 144u * 5 * 5);
  EXPECT_EQ(count_of(svg, "class=\"value\""), 0u);  // 144 grids: colour only, numbers in tooltips
  EXPECT_NE(svg.find(">Layer 11, head 11 (causal)</text>"), std::string::npos);
  const size_t data = html.find("id=\"attention-data\">") + 20;
  const nlohmann::json page =
      nlohmann::json::parse(html.substr(data, html.find("</script>", data) - data));
  EXPECT_EQ(page.at("heads").size(), 144u);
  EXPECT_EQ(page, explain_json({"--model", dir, "--text", sentence}));
  for (const std::string& text : {svg, html}) {
    EXPECT_EQ(text.find("https://"), std::string::npos);
    EXPECT_EQ(text.find("src="), std::string::npos);
  }
}

TEST(ExplainModel, BadInputExitsWith2NamingTheFlagWithoutOutputFiles) {
  const temp_dir tmp;
  const std::string dir = tmp.file("gpt2");
  fs::copy(golden_folder("gpt2_tiny_E32_H2_L2"), dir);
  ASSERT_TRUE(copy_gpt2_tokenizer_files(dir));
  const std::string ids = dir + "/input_ids.npy";
  const std::string no_config = tmp.file("no_config"), corrupt = tmp.file("corrupt"),
                    lone_vocab = tmp.file("lone_vocab");
  fs::copy(dir, no_config);
  fs::remove(no_config + "/config.json");
  fs::copy(dir, corrupt);
  std::ofstream(corrupt + "/config.json") << "{\"model_type\": \"gpt2\", \"n_embd\": ";
  fs::copy(dir, lone_vocab);
  fs::remove(lone_vocab + "/merges.txt");
  std::string long_text;
  for (int i = 0; i < 70; ++i) long_text += " word";
  const std::string small = golden_folder("gpt2_tiny_E24_H3_L1_prefixed_f16");  // vocab 300
  std::ofstream(tmp.file("spec.json")) << "{}";

  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
      {{"--model", tmp.file("missing"), "--text", sentence}, {"--model", "config.json"}},
      {{"--model", no_config, "--text", sentence}, {"--model", "config.json"}},
      {{"--model", corrupt, "--text", sentence}, {"--model", "config.json", "not valid JSON"}},
      {{"--model", dir, "--text", sentence, "--layer", "2"}, {"--layer", "2 layers"}},
      {{"--model", dir, "--text", sentence, "--layer", "-1"}, {"--layer"}},
      {{"--model", dir, "--text", sentence, "--head", "2"}, {"--head", "2 heads"}},
      {{"--model", dir, "--text", long_text}, {"--text", "70 tokens", "n_positions = 64"}},
      {{"--model", small, "--ids", ids}, {"--ids", "outside the vocabulary [0, 300)"}},
      {{"--model", dir, "--ids", tmp.file("none.npy")}, {"--ids"}},
      {{"--model", lone_vocab, "--ids", ids}, {"--model", "merges.txt"}},
      {{"--model", golden_folder("gpt2_tiny_E32_H2_L2"), "--text", sentence},
       {"--model", "vocab.json"}},
      {{"--model", dir, "--text", sentence, "--checkpoint", dir + "/model.safetensors"},
       {"--model", "--checkpoint"}},
      {{"--model", dir, "--text", sentence, "--spec", tmp.file("spec.json")},
       {"--model", "--spec"}},
      {{"--model", dir, "--text", sentence, "--ids", ids}, {"--text or --ids"}},
      {{"--model", dir}, {"--text or --ids"}},
      {{"--model", dir, "--text", ""}, {"--text or --ids"}},
      {{"--model", dir, "--text", sentence, "--verbose"}, {"--model", "--verbose"}},
      {{"--model", dir, "--text", sentence, "--causal"}, {"--model", "--causal"}},
      {{"--ids", ids}, {"--ids", "--model"}},
  };
  for (const auto& [args, needles] : cases) {
    std::vector<std::string> all = {"explain"};
    all.insert(all.end(), args.begin(), args.end());
    all.insert(all.end(), {"--svg", tmp.file("out.svg"), "--html", tmp.file("out.html")});
    const cli_result r = run_qkv(all);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    for (const std::string& needle : needles)
      EXPECT_NE(r.err.find(needle), std::string::npos) << needle << " not in: " << r.err;
    EXPECT_FALSE(file_exists(tmp.file("out.svg")));
    EXPECT_FALSE(file_exists(tmp.file("out.html")));
  }
}

// docs/pretrained.md's example, run as the doc gives it on the folder it describes: every line
// the doc shows is in the output (the doc leaves lines out with "...").
TEST(ExplainModelDocs, TheExampleOfPretrainedMdIsTrue) {
  const temp_dir tmp;
  const std::string dir = tmp.file("gpt2");
  fs::copy(golden_folder("gpt2_tiny_E32_H2_L2"), dir);
  ASSERT_TRUE(copy_gpt2_tokenizer_files(dir));
  const cli_result r = run_qkv({"explain", "--model", dir, "--text", sentence});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string out = r.out;
  for (size_t at; (at = out.find(dir)) != std::string::npos;) out.replace(at, dir.size(), "gpt2");
  EXPECT_GE(expect_doc_output("pretrained.md",
                              "$ qkv explain --model gpt2 --text \"jane visits africa\"", out),
            15);
}

}  // namespace
}  // namespace qkv::testing
