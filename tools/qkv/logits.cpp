// `qkv logits`: a GPT-2 folder's next-token logits [T, V] for every position of a sequence of
// ids (a .npy file) or of a text (tokenized with the folder's vocab.json and merges.txt), and
// optionally every head's attention weights [L, H, T, T].
#include "commands.hpp"
#include "model_folder.hpp"
#include "numbers.hpp"
#include "output_files.hpp"
#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"

namespace qkv::cli {
namespace {

struct logits_args {
  std::string model, ids, text, out, attention;
  int threads = 0;
};

void run_logits(const logits_args& a) {
  check_output_paths({{"--out", a.out}, {"--attention", a.attention}});
  const models::gpt2 m = load_model_folder(a.model);
  const std::vector<int64_t> ids =
      a.ids.empty() ? load_tokenizer_folder(a.model).encode(a.text) : read_ids_flag(a.ids);
  check_ids(ids, m.config(), a.ids.empty() ? "--text" : "--ids");
  const models::gpt2_output out = m.forward(ids, !a.attention.empty(), a.threads);
  output_files files;
  files.add("--out", a.out, [&](const std::string& p) { io::write_npy(p, out.logits); });
  if (out.attention)
    files.add("--attention", a.attention,
              [&](const std::string& p) { io::write_npy(p, *out.attention); });
  files.commit();
}

}  // namespace

void add_logits_command(CLI::App& app) {
  auto a = std::make_shared<logits_args>();
  CLI::App* cmd = app.add_subcommand(
      "logits", "Next-token logits (and attention weights) of a GPT-2 model folder");
  cmd->add_option("--model", a->model,
                  "Hugging Face GPT-2 folder: config.json, model.safetensors (and vocab.json, "
                  "merges.txt for --text)")
      ->required();
  auto* ids = cmd->add_option("--ids", a->ids, "token ids [T] (.npy, <i8 or <i4)");
  auto* text = cmd->add_option("--text", a->text, "text, tokenized with the folder's tokenizer");
  ids->excludes(text);
  text->excludes(ids);
  cmd->add_option("-o,--out", a->out, "logits [T, vocab] (.npy, written <f4)")->required();
  cmd->add_option("--attention", a->attention,
                  "every head's attention weights [layers, heads, T, T] (.npy)");
  add_threads(cmd, a->threads);
  cmd->callback([a, ids, text] {
    if (ids->count() + text->count() != 1) throw error("--ids or --text: give exactly one");
    run_logits(*a);
  });
}

}  // namespace qkv::cli
