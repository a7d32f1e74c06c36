// `qkv sdpa`: scaled dot-product attention over .npy files (DESIGN section 5), forward and,
// with --grad-out, backward.
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>

#include "commands.hpp"
#include "output_files.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"
#include "sdpa_args.hpp"

namespace qkv::cli {

tensor read_input(const std::string& flag, const std::string& path) {
  try {
    return io::read_npy_float(path);
  } catch (const error& e) {
    throw error(flag + ": " + e.what());
  }
}

attention_mask read_sdpa_mask(const std::string& flag, const std::string& path) {
  io::npy_array m;
  try {
    m = io::read_npy(path);
  } catch (const error& e) {
    throw error(flag + ": " + e.what());
  }
  attention_mask mask;
  if (auto* b = std::get_if<bool_tensor>(&m))
    mask.boolean = std::move(*b);
  else
    mask.additive = std::move(std::get<tensor>(m));
  return mask;
}

std::string as_flag_message(std::string what) {
  if (what.rfind("grad_out", 0) == 0) what.replace(0, 8, "grad-out");
  if (what.rfind("dropout_p", 0) == 0) what.replace(0, 9, "dropout");
  if (what.rfind("alibi_slopes", 0) == 0) what.replace(0, 12, "alibi");
  return "--" + what;
}

void read_sdpa_modifiers(const sdpa_args& a, sdpa_options& options) {
  if (!a.window.empty()) {
    // LEFT,RIGHT: two integers; their range (>= -1) is the library's rule.
    const size_t comma = a.window.find(',');
    sdpa_options::attention_window w;
    size_t used_left = 0, used_right = 0;
    try {
      if (comma == std::string::npos) throw std::invalid_argument("no comma");
      const std::string left = a.window.substr(0, comma), right = a.window.substr(comma + 1);
      w.left = std::stoll(left, &used_left);
      w.right = std::stoll(right, &used_right);
      if (used_left != left.size() || used_right != right.size())
        throw std::invalid_argument("trailing characters");
    } catch (const std::logic_error&) {
      throw error("--window: expected LEFT,RIGHT (two integers, -1 = unbounded), got '" + a.window +
                  "'");
    }
    options.window = w;
  }
  options.softcap = a.softcap;
  if (!a.alibi.empty()) options.alibi_slopes = read_input("--alibi", a.alibi);
  if (!a.sinks.empty()) options.sinks = read_input("--sinks", a.sinks);
  if (!a.dsinks.empty() && a.sinks.empty())
    throw error("--dsinks: needs --sinks S.npy (the gradient of the sinks)");
  if (!a.dsinks.empty() && a.grad_out.empty())
    throw error("--dsinks: needs --grad-out G.npy (the gradient of the loss w.r.t. OUT)");
}

namespace {

void run_sdpa(const sdpa_args& a) {
  const bool backward = !a.grad_out.empty();
  if (backward && (a.dq.empty() || a.dk.empty() || a.dv.empty()))
    throw error("--grad-out: needs all of --dq, --dk and --dv");
  if (!backward && !(a.dq.empty() && a.dk.empty() && a.dv.empty()))
    throw error("--dq/--dk/--dv: need --grad-out G.npy (the gradient of the loss w.r.t. OUT)");

  sdpa_options options;
  options.scale = a.scale;
  options.causal = parse_causal_mode(a.causal, "--causal");
  options.impl = parse_sdpa_impl(a.impl, "--impl");
  options.threads = a.threads;
  if (a.threads < 0)
    throw error("--threads: must be >= 0 (0 = default), got " + std::to_string(a.threads));
  options.dropout_p = a.dropout;
  options.dropout_seed = a.dropout_seed;
  read_sdpa_modifiers(a, options);
  if (a.ring && a.dropout != 0.0f)
    throw error("--dropout: not supported with --ring (the ranks see key positions locally)");
  if (a.ring) return run_sdpa_ring(a, options);

  const tensor q = read_input("--q", a.q), k = read_input("--k", a.k), v = read_input("--v", a.v);
  if (!a.mask.empty()) options.mask = read_sdpa_mask("--mask", a.mask);

  sdpa_result result;
  std::optional<sdpa_gradients> grads;
  try {
    result = sdpa_forward(q, k, v, options);
    if (backward)
      grads = sdpa_backward(q, k, v, result, read_input("--grad-out", a.grad_out), options);
  } catch (const error& e) {
    throw error(as_flag_message(e.what()));
  }

  output_files outputs;
  outputs.add(a.out, [&](const std::string& p) { io::write_npy(p, result.out); });
  outputs.add(a.lse, [&](const std::string& p) { io::write_npy(p, result.lse); });
  if (grads) {
    outputs.add(a.dq, [&](const std::string& p) { io::write_npy(p, grads->dq); });
    outputs.add(a.dk, [&](const std::string& p) { io::write_npy(p, grads->dk); });
    outputs.add(a.dv, [&](const std::string& p) { io::write_npy(p, grads->dv); });
    outputs.add(a.dsinks, [&](const std::string& p) { io::write_npy(p, grads->dsinks); });
  }
  outputs.commit();
}

}  // namespace

void add_sdpa_command(CLI::App& app) {
  auto args = std::make_shared<sdpa_args>();
  CLI::App* cmd = app.add_subcommand(
      "sdpa", "Scaled dot-product attention: OUT = softmax(scale*Q*K^T + mask) * V");
  cmd->add_option("--q", args->q, "queries Q [B,Hq,Nq,d] (.npy)")->required();
  cmd->add_option("--k", args->k, "keys K [B,Hkv,Nk,d] (.npy)")->required();
  cmd->add_option("--v", args->v, "values V [B,Hkv,Nk,dv] (.npy)")->required();
  cmd->add_option("-o,--out", args->out, "output OUT [B,Hq,Nq,dv] (.npy, written <f4)")->required();
  cmd->add_option("--mask", args->mask,
                  "mask broadcasting to [B,Hq,Nq,Nk]: bool (true = may attend) or float (added)");
  cmd->add_option("--causal", args->causal, "causal mask: none, top-left or bottom-right")
      ->capture_default_str();
  cmd->add_option("--scale", args->scale, "score scale (default 1/sqrt(d)); finite and > 0");
  cmd->add_option("--lse", args->lse, "write the logsumexp of each score row [B,Hq,Nq]");
  cmd->add_option("--impl", args->impl, "kernel: reference, fused or auto")->capture_default_str();
  cmd->add_option("--threads", args->threads, "threads (0 = QKV_NUM_THREADS, else all cores)")
      ->capture_default_str();
  cmd->add_option("--grad-out", args->grad_out, "G [B,Hq,Nq,dv]: backward of L = sum(OUT * G)");
  cmd->add_option("--dq", args->dq, "write dL/dQ [B,Hq,Nq,d]");
  cmd->add_option("--dk", args->dk, "write dL/dK [B,Hkv,Nk,d]");
  cmd->add_option("--dv", args->dv, "write dL/dV [B,Hkv,Nk,dv]");
  cmd->add_option("--dropout", args->dropout,
                  "attention dropout p in [0, 1): OUT = (P * M/(1-p)) * V, M a mask of keeps")
      ->capture_default_str();
  cmd->add_option("--dropout-seed", args->dropout_seed,
                  "seed of the dropout mask (the same seed gives the same mask)")
      ->capture_default_str();
  cmd->add_option("--window", args->window,
                  "sliding window LEFT,RIGHT: query i sees keys i+o-LEFT..i+o+RIGHT, o = Nk-Nq, "
                  "-1 = unbounded side");
  cmd->add_option("--softcap", args->softcap, "logit softcap C: S = C*tanh(S/C); finite and > 0");
  cmd->add_option("--alibi", args->alibi, "ALiBi slopes [Hq] (.npy): S -= slope*|i+o-j|");
  cmd->add_option("--sinks", args->sinks, "attention sinks [Hq] (.npy): one logit per head");
  cmd->add_option("--dsinks", args->dsinks, "with --grad-out and --sinks: write dL/dsinks [Hq]");
  cmd->add_flag("--ring", args->ring,
                "ring attention over MPI: run as `mpirun -np P qkv sdpa --ring ...`");
  cmd->add_option("--ring-layout", args->ring_layout,
                  "with --ring: contiguous or zigzag shards (zigzag balances causal work)")
      ->capture_default_str();
  cmd->callback([args] { run_sdpa(*args); });
}

}  // namespace qkv::cli
