// `qkv tokenize`: GPT-2's tokenizer from a model folder (vocab.json, merges.txt): text to ids
// (one line, space-separated) or, with --decode, ids back to text.
#include <cstdio>
#include <sstream>

#include "commands.hpp"
#include "model_folder.hpp"
#include "qkv/error.hpp"

namespace qkv::cli {
namespace {

struct tokenize_args {
  std::string model, text, decode;
};

// "15496 995" -> {15496, 995}; anything but whitespace-separated integers names --decode.
std::vector<int64_t> parse_ids(const std::string& s) {
  std::vector<int64_t> ids;
  std::istringstream in(s);
  std::string word;
  while (in >> word) {
    size_t used = 0;
    int64_t id = 0;
    try {
      id = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size())
      throw error("--decode: expected space-separated integer ids, got '" + word + "'");
    ids.push_back(id);
  }
  return ids;
}

void run_tokenize(const tokenize_args& a, bool decode) {
  const text::gpt2_tokenizer tok = load_tokenizer_folder(a.model);
  if (decode) {
    const std::string text = tok.decode(parse_ids(a.decode), "--decode");
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return;
  }
  std::string line;
  for (const int64_t id : tok.encode(a.text))
    line += (line.empty() ? "" : " ") + std::to_string(id);
  std::puts(line.c_str());
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto a = std::make_shared<tokenize_args>();
  CLI::App* cmd =
      app.add_subcommand("tokenize", "GPT-2's tokenizer of a model folder: text to ids and back");
  cmd->add_option("--model", a->model,
                  "Hugging Face GPT-2 folder holding vocab.json and merges.txt")
      ->required();
  auto* text = cmd->add_option("--text", a->text, "text to encode (prints the ids on one line)");
  auto* decode = cmd->add_option("--decode", a->decode, "space-separated ids to decode");
  text->excludes(decode);
  decode->excludes(text);
  cmd->callback([a, text, decode] {
    if (text->count() + decode->count() != 1) throw error("--text or --decode: give exactly one");
    run_tokenize(*a, decode->count() == 1);
  });
}

}  // namespace qkv::cli
