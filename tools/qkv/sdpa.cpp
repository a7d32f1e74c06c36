// `qkv sdpa`: scaled dot-product attention over .npy files (docs/contracts.md section 5), forward
// and, with --grad-out, backward.
#include <optional>
#include <string>
#include <variant>

#include "commands.hpp"
#include "inputs.hpp"
#include "numbers.hpp"
#include "output_files.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"
#include "sdpa_args.hpp"

namespace qkv::cli {

attention_mask read_sdpa_mask(const std::string& flag, const std::string& path) {
  io::npy_array m = read_npy_input(flag, path);
  attention_mask mask;
  if (auto* b = std::get_if<bool_tensor>(&m))
    mask.boolean = std::move(*b);
  else
    mask.additive = std::move(std::get<tensor>(m));
  return mask;
}

std::string sdpa_flag_message(const error& e) {
  return flag_message(e, {{"dropout_p", "dropout"}, {"alibi_slopes", "alibi"}});
}

std::vector<output_path> sdpa_outputs(const sdpa_args& a) {
  return {{"--out", a.out}, {"--lse", a.lse}, {"--dq", a.dq},
          {"--dk", a.dk},   {"--dv", a.dv},   {"--dsinks", a.dsinks}};
}

void read_sdpa_modifiers(const sdpa_args& a, sdpa_options& options) {
  if (!a.window.empty()) {
    // LEFT,RIGHT: two integers; their range (>= -1) is the library's rule.
    const auto refuse = [&] {
      return error("--window: expected LEFT,RIGHT (two integers, -1 = unbounded), got '" +
                   a.window + "'");
    };
    const size_t comma = a.window.find(',');
    if (comma == std::string::npos) throw refuse();
    const auto side = [&](const std::string& text) {
      try {
        return parse_int("--window", text, {});
      } catch (const error&) {
        throw refuse();
      }
    };
    attention_window w;
    w.left = side(a.window.substr(0, comma));
    w.right = side(a.window.substr(comma + 1));
    options.modifiers.window = w;
  }
  options.modifiers.softcap = a.softcap;
  if (!a.alibi.empty()) options.modifiers.alibi_slopes = read_float_input("--alibi", a.alibi);
  if (!a.sinks.empty()) options.modifiers.sinks = read_float_input("--sinks", a.sinks);
  if (!a.dsinks.empty() && a.sinks.empty())
    throw error("--dsinks: needs --sinks S.npy (the gradient of the sinks)");
  if (!a.dsinks.empty() && a.grad_out.empty())
    throw error("--dsinks: needs --grad-out G.npy (the gradient of the loss w.r.t. OUT)");
}

namespace {

// --compute: f32 only. The bf16-compute mode (both products by vdpbf16ps) needs avx512_bf16,
// and is not built yet even where a CPU has it.
void check_compute(const std::string& compute) {
  if (compute == "f32") return;
  if (compute != "bf16") throw error("--compute", "expected f32 or bf16, got '" + compute + "'");
  if (!__builtin_cpu_supports("avx512bf16"))
    throw error("--compute",
                "bf16 needs a CPU with avx512_bf16 (vdpbf16ps); this one lacks it. Use f32");
  throw error("--compute", "bf16 is not built yet; use f32");
}

// An input in the storage the flags ask for: as the file stores it (<f2: f16), or rounded to
// the nearest value of `type` (ties to even).
stored_tensor stored_input(const std::string& flag, const std::string& path,
                           std::optional<dtype> type) {
  stored_tensor t = read_stored_input(flag, path);
  if (!type || *type == t.type()) return t;
  return round_to(*type, t.to_tensor());
}

void run_sdpa(const sdpa_args& a) {
  const bool backward = !a.grad_out.empty();
  if (backward && a.dq.empty() && a.dk.empty() && a.dv.empty())
    throw error("--grad-out: give at least one of --dq, --dk and --dv to write");
  if (!backward && !(a.dq.empty() && a.dk.empty() && a.dv.empty()))
    throw error("--dq/--dk/--dv: need --grad-out G.npy (the gradient of the loss w.r.t. OUT)");
  if (a.ring_layout_given && !a.ring)
    throw error("--ring-layout: only means something with --ring (ring attention over MPI)");
  check_compute(a.compute);
  if (a.ring && (a.all_dtype || a.kv_dtype))
    throw error("--dtype/--kv-dtype: not supported with --ring (ring attention runs on f32)");

  sdpa_options options;
  options.scale = a.scale;
  options.causal = parse_causal_mode(a.causal, "--causal");
  options.run = a.run;
  options.dropout_p = a.dropout;
  options.dropout_seed = a.dropout_seed;
  read_sdpa_modifiers(a, options);
  if (a.ring && a.dropout != 0.0f)
    throw error("--dropout: not supported with --ring (the ranks see key positions locally)");
  if (a.ring) return run_sdpa_ring(a, options);  // which checks the outputs on rank 0
  check_output_paths(sdpa_outputs(a));

  const std::optional<dtype> kv_type = a.kv_dtype ? a.kv_dtype : a.all_dtype;
  const stored_tensor q = stored_input("--q", a.q, a.all_dtype),
                      k = stored_input("--k", a.k, kv_type), v = stored_input("--v", a.v, kv_type);
  if (!a.mask.empty()) options.mask = read_sdpa_mask("--mask", a.mask);

  sdpa_result result;
  std::optional<sdpa_gradients> grads;
  try {
    result = sdpa_forward(q, k, v, options);
    if (backward)
      grads = sdpa_backward(q, k, v, result, read_float_input("--grad-out", a.grad_out), options);
  } catch (const error& e) {
    throw error(sdpa_flag_message(e));
  }

  output_files outputs;
  outputs.add("--out", a.out, [&](const std::string& p) { io::write_npy(p, result.out); });
  outputs.add("--lse", a.lse, [&](const std::string& p) { io::write_npy(p, result.lse); });
  if (grads) {
    outputs.add("--dq", a.dq, [&](const std::string& p) { io::write_npy(p, grads->dq); });
    outputs.add("--dk", a.dk, [&](const std::string& p) { io::write_npy(p, grads->dk); });
    outputs.add("--dv", a.dv, [&](const std::string& p) { io::write_npy(p, grads->dv); });
    outputs.add("--dsinks", a.dsinks,
                [&](const std::string& p) { io::write_npy(p, grads->dsinks); });
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
  add_real(cmd, "--scale", args->scale, {.lo = 0, .lo_closed = false},
           "score scale (default 1/sqrt(d)); finite and > 0");
  cmd->add_option("--lse", args->lse, "write the logsumexp of each score row [B,Hq,Nq]");
  add_run_options(cmd, args->run);
  cmd->add_option("--grad-out", args->grad_out,
                  "G [B,Hq,Nq,dv]: backward of L = sum(OUT * G); writes any of --dq, --dk, --dv");
  cmd->add_option("--dq", args->dq, "write dL/dQ [B,Hq,Nq,d]");
  cmd->add_option("--dk", args->dk, "write dL/dK [B,Hkv,Nk,d]");
  cmd->add_option("--dv", args->dv, "write dL/dV [B,Hkv,Nk,dv]");
  add_real(cmd, "--dropout", args->dropout, {.lo = 0, .hi = 1, .hi_closed = false},
           "attention dropout p in [0, 1): OUT = (P * M/(1-p)) * V, M a mask of keeps");
  add_uint64(cmd, "--dropout-seed", args->dropout_seed,
             "seed of the dropout mask, in [0, 2^64) (the same seed gives the same mask)");
  cmd->add_option("--window", args->window,
                  "sliding window LEFT,RIGHT: query i sees keys i+o-LEFT..i+o+RIGHT, o = Nk-Nq, "
                  "-1 = unbounded side");
  add_real(cmd, "--softcap", args->softcap, {.lo = 0, .lo_closed = false},
           "logit softcap C: S = C*tanh(S/C); finite and > 0");
  cmd->add_option("--alibi", args->alibi, "ALiBi slopes [Hq] (.npy): S -= slope*|i+o-j|");
  cmd->add_option("--sinks", args->sinks, "attention sinks [Hq] (.npy): one logit per head");
  cmd->add_option("--dsinks", args->dsinks, "with --grad-out and --sinks: write dL/dsinks [Hq]");
  add_dtype(cmd, "--dtype", args->all_dtype,
            "store Q, K and V as f32, f16 or bf16 (rounded to nearest even) and run on that");
  add_dtype(cmd, "--kv-dtype", args->kv_dtype,
            "store K and V as f32, f16 or bf16 (rounded to nearest even; over --dtype)");
  cmd->add_option("--compute", args->compute,
                  "compute type: f32 (bf16, by avx512_bf16's vdpbf16ps, is not built yet)")
      ->capture_default_str();
  cmd->add_flag("--ring", args->ring,
                "ring attention over MPI: run as `mpirun -np P qkv sdpa --ring ...`");
  cmd->add_option("--ring-layout", args->ring_layout,
                  "with --ring: contiguous or zigzag shards (zigzag balances causal work)")
      ->capture_default_str();
  cmd->callback([args, cmd] {
    args->ring_layout_given = cmd->count("--ring-layout") > 0;
    run_sdpa(*args);
  });
}

}  // namespace qkv::cli
