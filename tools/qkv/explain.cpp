// `qkv explain`: self-attention walked through step by step on the embedded "Write a poem"
// example, a JSON spec file or .npy matrices; or the attention of a `qkv train` checkpoint or of
// a GPT-2 folder on a text, every layer and head. Rendered for the terminal, as JSON
// (docs/explain_json.md), as SVG heatmaps or as a self-contained HTML page.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "commands.hpp"
#include "inputs.hpp"
#include "model_folder.hpp"
#include "numbers.hpp"
#include "output_files.hpp"
#include "qkv/error.hpp"
#include "qkv/explain/attention_map.hpp"
#include "qkv/explain/checkpoint_trace.hpp"
#include "qkv/explain/example.hpp"
#include "qkv/explain/gpt2_trace.hpp"
#include "qkv/explain/render_html.hpp"
#include "qkv/explain/render_json.hpp"
#include "qkv/explain/render_svg.hpp"
#include "qkv/explain/render_text.hpp"
#include "qkv/explain/trace.hpp"
#include "qkv/io/atomic_file.hpp"
#include "qkv/io/npy.hpp"
#include "qkv/train/trainer.hpp"

namespace qkv::cli {
namespace {

struct explain_args {
  std::string x, wq, wk, wv, tokens, spec, format = "text", svg, html;
  bool causal = false, verbose = false;
  std::optional<float> scale;
  std::string checkpoint, text;  // a character-level GPT and the text it reads
  std::string model, ids;        // a GPT-2 folder and the ids it reads (or --text)
  int64_t layer = 0, head = 0;
  bool layer_given = false, head_given = false;
};

// The inputs of one walkthrough and where they come from ("" for the .npy flags).
struct explain_inputs : explain::example {
  std::string source;
};

explain_inputs gather_inputs(const explain_args& a) {
  const bool any_npy = !(a.x.empty() && a.wq.empty() && a.wk.empty() && a.wv.empty());
  if (any_npy && !a.spec.empty())
    throw error("--spec: give a spec file or --x/--wq/--wk/--wv, not both");
  explain_inputs in;
  if (any_npy) {
    for (const auto& [flag, path] :
         {std::pair{"--x", &a.x}, {"--wq", &a.wq}, {"--wk", &a.wk}, {"--wv", &a.wv}})
      if (path->empty())
        throw error(std::string(flag) + ": missing; --x, --wq, --wk and --wv go together");
    in.x = read_float_input("--x", a.x);
    in.wq = read_float_input("--wq", a.wq);
    in.wk = read_float_input("--wk", a.wk);
    in.wv = read_float_input("--wv", a.wv);
  } else if (!a.spec.empty()) {
    const std::string text = read_for_flag("--spec", [&] { return io::read_regular_file(a.spec); });
    const std::string source = "--spec " + a.spec;
    in = {explain::parse_example(text, source), source};
  } else {
    in = {explain::write_a_poem(), "the embedded example"};
  }
  if (!a.tokens.empty()) in.tokens = a.tokens;
  if (a.scale) in.scale = *a.scale;
  return in;
}

// Every number of the walkthrough finite (the masked scores aside, -inf by design): inputs
// near float32's limit can overflow in the projections or the scores.
void require_finite(const explain::attention_trace& t, const std::string& source) {
  const auto check = [&](const explain::matrix& m, const char* step) {
    for (const double v : m.values)
      if (!std::isfinite(v))
        throw error(source + ": " + step +
                    " has a non-finite value (the inputs overflow float32 there); use smaller "
                    "values");
  };
  check(t.x, "X");
  for (const explain::head_trace& h : t.heads) {
    check(h.q, "Q");
    check(h.k, "K");
    check(h.v, "V");
    check(h.scores, "Q·K^T");
    check(h.scaled, "the scaled scores");
    check(h.weights, "the weights");
    check(h.output, "the output");
  }
}

bool colour_terminal() {
  const char* no_colour = std::getenv("NO_COLOR");
  return isatty(STDOUT_FILENO) && (no_colour == nullptr || *no_colour == '\0');
}

// Writes the --svg and --html files, then `shown` (already formatted for stdout). Everything is
// rendered before anything is written, so a failure leaves no partial output.
void emit(const explain_args& a, const std::string& shown, const std::function<std::string()>& svg,
          const std::function<std::string()>& html) {
  output_files outputs;
  const std::string svg_text = a.svg.empty() ? "" : svg();
  const std::string html_text = a.html.empty() ? "" : html();
  outputs.add("--svg", a.svg,
              [&](const std::string& p) { io::write_file_atomically(p, svg_text); });
  outputs.add("--html", a.html,
              [&](const std::string& p) { io::write_file_atomically(p, html_text); });
  outputs.commit();
  std::fwrite(shown.data(), 1, shown.size(), stdout);
}

// --checkpoint C --text T: the trained model's attention on the characters of T, every layer and
// head or --layer/--head; a learner's summary by default, the walkthrough with --verbose.
void run_checkpoint(const explain_args& a) {
  const bool other_inputs = !(a.x.empty() && a.wq.empty() && a.wk.empty() && a.wv.empty() &&
                              a.spec.empty() && a.tokens.empty() && a.ids.empty());
  if (other_inputs || a.causal || a.scale)
    throw error(
        "--checkpoint: explains a trained model on --text; it does not combine with "
        "--x/--wq/--wk/--wv, --spec, --tokens, --ids, --scale or --causal (the model is causal)");
  if (a.text.empty()) throw error("--text: required with --checkpoint, and must not be empty");
  const train::trained_model m = read_for_flag(
      "--checkpoint " + a.checkpoint, [&] { return train::load_trained_model(a.checkpoint); });
  const std::vector<int32_t> ids = m.vocab.encode(a.text, "--text");
  std::vector<std::string> tokens;
  for (const int32_t id : ids) tokens.push_back(m.vocab.decode({id}));
  const std::optional<int64_t> layer = a.layer_given ? std::optional(a.layer) : std::nullopt,
                               head = a.head_given ? std::optional(a.head) : std::nullopt;
  explain::attention_map map;
  std::string walkthrough;
  try {
    map = explain::map_gpt(*m.model, ids, tokens, {layer, head, a.verbose});
    if (a.verbose && a.format == "text")
      for (int64_t l = layer.value_or(0); l < (layer ? *layer + 1 : map.model_layers); ++l) {
        explain::attention_trace trace = explain::trace_gpt_layer(*m.model, ids, tokens, l, head);
        trace.title = "Layer " + std::to_string(l);
        walkthrough += "\n" + explain::render_text(trace, {colour_terminal()});
      }
  } catch (const error& e) {
    throw error(flag_message(e));  // the error names text, layer or head
  }
  map.title = a.checkpoint + " reading \"" + a.text + "\", one byte per token";
  emit(
      a,
      a.format == "json" ? explain::render_json(map)
                         : explain::render_summary(map, {colour_terminal()}) + walkthrough,
      [&] { return explain::render_svg(map); }, [&] { return explain::render_model_html(map); });
}

// The label of token `id` without the folder's tokenizer files: "#id".
std::string id_label(int64_t id) {
  return "#" + std::to_string(id);
}

// --model DIR (--text T | --ids IDS.npy): a GPT-2 folder's attention on the tokens, every layer
// and head or --layer/--head. Tokens show as their text when the folder has its tokenizer files.
void run_model(const explain_args& a) {
  const bool other_inputs = !(a.x.empty() && a.wq.empty() && a.wk.empty() && a.wv.empty() &&
                              a.spec.empty() && a.tokens.empty() && a.checkpoint.empty());
  if (other_inputs || a.causal || a.scale || a.verbose)
    throw error(
        "--model: explains a GPT-2 folder on --text or --ids; it does not combine with "
        "--checkpoint, --x/--wq/--wk/--wv, --spec, --tokens, --scale, --verbose or --causal (the "
        "model is causal)");
  if (a.text.empty() == a.ids.empty())
    throw error("--text or --ids: give exactly one with --model (a non-empty text)");
  const models::gpt2 model = load_model_folder(a.model);
  // The tokenizer: needed for --text; with --ids, used when the folder has either file (a lone
  // one is refused as missing its twin).
  namespace fs = std::filesystem;
  std::optional<text::gpt2_tokenizer> tokenizer;
  if (!a.text.empty() || fs::exists(a.model + "/vocab.json") || fs::exists(a.model + "/merges.txt"))
    tokenizer = load_tokenizer_folder(a.model);
  const std::vector<int64_t> ids = a.ids.empty() ? tokenizer->encode(a.text) : read_ids_flag(a.ids);
  check_ids(ids, model.config(), a.ids.empty() ? "--text" : "--ids");
  std::vector<std::string> tokens;
  for (const int64_t id : ids)
    tokens.push_back(tokenizer ? tokenizer->decode(std::span(&id, 1)) : id_label(id));
  const std::optional<int64_t> layer = a.layer_given ? std::optional(a.layer) : std::nullopt,
                               head = a.head_given ? std::optional(a.head) : std::nullopt;
  explain::attention_map map;
  try {
    map = explain::map_gpt2(model, ids, std::move(tokens), {layer, head, false});
  } catch (const error& e) {
    throw error(flag_message(e));  // the error names layer or head
  }
  map.title = a.model + " reading " +
              (a.ids.empty() ? "\"" + a.text + "\"" : "the ids of " + a.ids) +
              (tokenizer ? ", GPT-2's byte-level BPE tokens"
                         : ", each token shown as #id (the folder has no tokenizer files)");
  emit(
      a,
      a.format == "json" ? explain::render_json(map)
                         : explain::render_summary(map, {colour_terminal()}),
      [&] { return explain::render_svg(map); }, [&] { return explain::render_model_html(map); });
}

void run_explain(const explain_args& a) {
  if (a.format != "text" && a.format != "json")
    throw error("--format: expected text or json, got '" + a.format + "'");
  if (!a.model.empty()) return run_model(a);
  if (!a.checkpoint.empty()) return run_checkpoint(a);
  if (!a.text.empty() || !a.ids.empty() || a.layer_given || a.head_given)
    throw error(
        "--text/--ids/--layer/--head: need --checkpoint (a model written by qkv train) or "
        "--model (a GPT-2 folder)");
  if (a.verbose) throw error("--verbose: only with --checkpoint (the walkthrough is the default)");
  const explain_inputs in = gather_inputs(a);
  const std::string source = in.source.empty() ? "--x/--wq/--wk/--wv" : in.source;
  explain::attention_trace trace;
  try {
    const nn::self_attention layer(in.wq, in.wk, in.wv);
    trace = explain::trace_self_attention(layer, in.x, explain::split_tokens(in.tokens), a.causal,
                                          in.scale);
  } catch (const error& e) {
    // Library messages name x, wq, wk, wv or tokens: say which flag or file that is.
    throw error(in.source.empty() || e.argument() == "tokens" ? flag_message(e)
                                                              : in.source + ": " + e.what());
  }
  require_finite(trace, source);
  trace.title = in.title;
  emit(
      a,
      a.format == "json" ? explain::render_json(trace)
                         : explain::render_text(trace, {colour_terminal()}),
      [&] { return explain::render_svg(trace); }, [&] { return explain::render_html(trace); });
}

}  // namespace

void add_explain_command(CLI::App& app) {
  auto args = std::make_shared<explain_args>();
  CLI::App* cmd = app.add_subcommand(
      "explain", "Self-attention step by step: Q, K, V, Q*K^T, scaling, softmax, output");
  cmd->footer(
      "Without inputs: the embedded \"Write a poem\" example (StatQuest).\n"
      "--spec FILE.json: {\"tokens\", \"encodings\" [N][d_model], \"W_q_weight\", \"W_k_weight\",\n"
      "  \"W_v_weight\" [d_out][d_model], optional \"scale\", \"title\", \"description\"} as in\n"
      "  tests/data/examples/statquest_write_a_poem.json (docs/attention.md lists the keys).\n"
      "--checkpoint C --text \"jane visits africa\" [--layer L] [--head H]: a qkv train model's\n"
      "  attention, every layer and head or the ones chosen, one byte per token: the word\n"
      "  table and each head's most attended word (--verbose: every step of every head);\n"
      "  --html: the model view (every layer x head), the head view and the attention rollout.\n"
      "--model DIR (--text T | --ids IDS.npy) [--layer L] [--head H]: the same views of a GPT-2\n"
      "  folder (config.json, model.safetensors, vocab.json, merges.txt), one BPE token per row:\n"
      "  each token's most attended token per head.");
  cmd->add_option("--x", args->x, "encodings X [N, d_model] (.npy)");
  cmd->add_option("--wq", args->wq, "W_Q [d_k, d_model], nn.Linear layout (.npy)");
  cmd->add_option("--wk", args->wk, "W_K [d_k, d_model] (.npy)");
  cmd->add_option("--wv", args->wv, "W_V [d_v, d_model] (.npy)");
  cmd->add_option("--tokens", args->tokens, "token labels, one per row of X: \"a b c\"");
  cmd->add_option("--spec", args->spec, "a JSON file with tokens, encodings and the weights");
  add_real(cmd, "--scale", args->scale, {.lo = 0, .lo_closed = false},
           "the score scale (default 1/sqrt(d_k), or the spec's)");
  cmd->add_flag("--causal", args->causal, "masked self-attention: a token sees only earlier ones");
  cmd->add_option("--format", args->format, "text or json")->capture_default_str();
  cmd->add_option("--svg", args->svg, "write the attention heatmaps as SVG");
  cmd->add_option("--html", args->html, "write a self-contained HTML page");
  cmd->add_option("--checkpoint", args->checkpoint,
                  "explain a byte-level model written by qkv train (with --text)");
  cmd->add_option("--model", args->model,
                  "explain a Hugging Face GPT-2 folder (with --text or --ids)");
  cmd->add_option("--text", args->text, "with --checkpoint or --model: the text the model reads");
  cmd->add_option("--ids", args->ids,
                  "with --model: token ids [T] (.npy, <i8 or <i4) instead of --text");
  CLI::Option* layer = add_int(cmd, "--layer", args->layer, {.lo = 0},
                               "with --checkpoint or --model: one layer (default: all)");
  CLI::Option* head = add_int(cmd, "--head", args->head, {.lo = 0},
                              "with --checkpoint or --model: one head (default: all)");
  cmd->add_flag("--verbose", args->verbose,
                "with --checkpoint: also every step (Q, K, V, scores, ...) of the shown heads");
  cmd->callback([args, layer, head] {
    args->layer_given = layer->count() > 0;
    args->head_given = head->count() > 0;
    run_explain(*args);
  });
}

}  // namespace qkv::cli
