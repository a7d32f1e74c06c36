// `qkv explain`: single-head self-attention walked through step by step (DESIGN section 5), on
// the embedded "Write a poem" example, a JSON spec file or .npy matrices, or a layer of a `qkv
// train` checkpoint on a text; rendered for the terminal, as JSON, as an SVG heatmap or as a
// self-contained HTML page.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "commands.hpp"
#include "inputs.hpp"
#include "numbers.hpp"
#include "output_files.hpp"
#include "qkv/error.hpp"
#include "qkv/explain/checkpoint_trace.hpp"
#include "qkv/explain/example.hpp"
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
  bool causal = false;
  std::string checkpoint, text;  // a character-level GPT and the text it reads
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
  if (any_npy) {
    for (const auto& [flag, path] :
         {std::pair{"--x", &a.x}, {"--wq", &a.wq}, {"--wk", &a.wk}, {"--wv", &a.wv}})
      if (path->empty())
        throw error(std::string(flag) + ": missing; --x, --wq, --wk and --wv go together");
    return {{"", a.tokens, read_float_input("--x", a.x), read_float_input("--wq", a.wq),
             read_float_input("--wk", a.wk), read_float_input("--wv", a.wv)},
            ""};
  }
  explain_inputs in;
  if (!a.spec.empty()) {
    std::string text;
    try {
      text = io::read_regular_file(a.spec);
    } catch (const error& e) {
      throw error(std::string("--spec: ") + e.what());
    }
    const std::string source = "--spec " + a.spec;
    in = {explain::parse_example(text, source), source};
    if (in.title.empty()) in.title = a.spec;
  } else {
    in = {explain::write_a_poem(), "the embedded example"};
  }
  if (!a.tokens.empty()) in.tokens = a.tokens;
  return in;
}

bool colour_terminal() {
  const char* no_colour = std::getenv("NO_COLOR");
  return isatty(STDOUT_FILENO) && (no_colour == nullptr || *no_colour == '\0');
}

// Renders `shown` (already formatted for stdout) and the --svg/--html files of `trace`. Everything
// is rendered before anything is written, so a failure leaves no partial output.
void emit(const explain_args& a, const explain::attention_trace& trace, const std::string& shown) {
  output_files outputs;
  const std::string svg = a.svg.empty() ? "" : explain::render_svg(trace);
  const std::string html = a.html.empty() ? "" : explain::render_html(trace);
  outputs.add("--svg", a.svg, [&](const std::string& p) { io::write_file_atomically(p, svg); });
  outputs.add("--html", a.html, [&](const std::string& p) { io::write_file_atomically(p, html); });
  outputs.commit();
  std::fwrite(shown.data(), 1, shown.size(), stdout);
}

// --checkpoint C --text T: layer --layer's heads (all, or --head) of the trained model reading
// the characters of T, and the word table aggregated from them.
void run_checkpoint(const explain_args& a) {
  const bool other_inputs = !(a.x.empty() && a.wq.empty() && a.wk.empty() && a.wv.empty() &&
                              a.spec.empty() && a.tokens.empty());
  if (other_inputs || a.causal)
    throw error(
        "--checkpoint: explains a trained model on --text; it does not combine with "
        "--x/--wq/--wk/--wv, --spec, --tokens or --causal (the model is causal)");
  if (a.text.empty()) throw error("--text: required with --checkpoint, and must not be empty");
  train::trained_model m;
  try {
    m = train::load_trained_model(a.checkpoint);
  } catch (const error& e) {
    throw error("--checkpoint " + a.checkpoint + ": " + e.what());
  }
  const std::vector<int32_t> ids = m.vocab.encode(a.text, "--text");
  explain::attention_trace trace;
  try {
    trace = explain::trace_gpt_layer(*m.model, ids, a.text, a.layer,
                                     a.head_given ? std::optional<int64_t>(a.head) : std::nullopt);
  } catch (const error& e) {
    throw error(std::string("--") + e.what());  // the message names text, layer or head
  }
  trace.title = "Layer " + std::to_string(a.layer) + " of " + a.checkpoint + ", " +
                (a.head_given ? "head " + std::to_string(a.head)
                              : "all " + std::to_string(trace.heads.size()) + " heads") +
                ", reading \"" + a.text + "\" one character per token";
  std::vector<explain::word_table> tables;
  for (const explain::head_trace& h : trace.heads)
    tables.push_back(explain::aggregate_words(h.weights, a.text));
  emit(a, trace,
       a.format == "json" ? explain::render_json_with_words(trace, tables)
                          : explain::render_text(trace, {colour_terminal()}) + "\n" +
                                explain::render_word_tables(tables));
}

void run_explain(const explain_args& a) {
  if (a.format != "text" && a.format != "json")
    throw error("--format: expected text or json, got '" + a.format + "'");
  if (!a.checkpoint.empty()) return run_checkpoint(a);
  if (!a.text.empty() || a.layer_given || a.head_given)
    throw error("--text/--layer/--head: need --checkpoint (a model written by qkv train)");
  const explain_inputs in = gather_inputs(a);
  explain::attention_trace trace;
  try {
    const nn::self_attention layer(in.wq, in.wk, in.wv);
    trace = explain::trace_self_attention(layer, in.x, explain::split_tokens(in.tokens), a.causal);
  } catch (const error& e) {
    // Library messages name x, wq, wk, wv or tokens: say which flag or file that is.
    throw error((in.source.empty() || std::string_view(e.what()).starts_with("tokens")
                     ? "--"
                     : in.source + ": ") +
                e.what());
  }
  trace.title = in.title;

  emit(a, trace,
       a.format == "json" ? explain::render_json(trace)
                          : explain::render_text(trace, {colour_terminal()}));
}

}  // namespace

void add_explain_command(CLI::App& app) {
  auto args = std::make_shared<explain_args>();
  CLI::App* cmd = app.add_subcommand(
      "explain", "Self-attention step by step: Q, K, V, Q*K^T, scaling, softmax, output");
  cmd->footer(
      "Without inputs: the embedded \"Write a poem\" example (StatQuest).\n"
      "--spec FILE.json: {\"tokens\", \"encodings\" [N][d_model], \"W_q_weight\", \"W_k_weight\",\n"
      "  \"W_v_weight\" [d_out][d_model]} as in tests/data/examples/statquest_write_a_poem.json.\n"
      "--checkpoint C --text \"jane visits africa\" [--layer L] [--head H]: a qkv train model's\n"
      "  layer L (default 0), every head or head H, one character per token, and a word table.");
  cmd->add_option("--x", args->x, "encodings X [N, d_model] (.npy)");
  cmd->add_option("--wq", args->wq, "W_Q [d_k, d_model], nn.Linear layout (.npy)");
  cmd->add_option("--wk", args->wk, "W_K [d_k, d_model] (.npy)");
  cmd->add_option("--wv", args->wv, "W_V [d_v, d_model] (.npy)");
  cmd->add_option("--tokens", args->tokens, "token labels, one per row of X: \"a b c\"");
  cmd->add_option("--spec", args->spec, "a JSON file with tokens, encodings and the weights");
  cmd->add_flag("--causal", args->causal, "masked self-attention: a token sees only earlier ones");
  cmd->add_option("--format", args->format, "text or json")->capture_default_str();
  cmd->add_option("--svg", args->svg, "write the attention heatmap as SVG");
  cmd->add_option("--html", args->html, "write a self-contained HTML page of the walkthrough");
  cmd->add_option("--checkpoint", args->checkpoint,
                  "explain a character-level model written by qkv train (with --text)");
  cmd->add_option("--text", args->text, "with --checkpoint: the text the model reads");
  CLI::Option* layer =
      add_int(cmd, "--layer", args->layer, {.lo = 0}, "with --checkpoint: the layer");
  CLI::Option* head =
      add_int(cmd, "--head", args->head, {.lo = 0}, "with --checkpoint: one head (default: all)");
  cmd->callback([args, layer, head] {
    args->layer_given = layer->count() > 0;
    args->head_given = head->count() > 0;
    run_explain(*args);
  });
}

}  // namespace qkv::cli
