// Collecting an attention trace: the projections from the nn layer, the rest from the
// reference kernel's observer, so that every number shown is one the library computed.
#include "qkv/explain/trace.hpp"

#include <sstream>

#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "qkv/reference.hpp"

namespace qkv::explain {
namespace {

// Head h of a [H,N,f] tensor (or the whole of an [N,f] one) as a float64 matrix.
matrix head_matrix(const tensor& t, int64_t h) {
  matrix m{t.size(-2), t.size(-1), {}};
  const float* base = t.data() + h * m.rows * m.cols;
  m.values.assign(base, base + m.rows * m.cols);
  return m;
}

// Files each step the kernel reports under its head (batch is always 1 here).
class trace_recorder : public attention_observer {
 public:
  explicit trace_recorder(attention_trace& trace) : trace_(trace) {}
  void on_step(attention_step step, int64_t, int64_t h, const double* values, int64_t rows,
               int64_t cols) override {
    head_trace& head = trace_.heads[static_cast<size_t>(h)];
    matrix* target = nullptr;
    switch (step) {
      case attention_step::scores:
        target = &head.scores;
        break;
      case attention_step::scaled:
        target = &head.scaled;
        break;
      case attention_step::masked:
        target = &head.masked;
        break;
      case attention_step::probabilities:
        target = &head.weights;
        break;
      case attention_step::output:
        target = &head.output;
        break;
      case attention_step::dropped:
        break;
    }
    if (target) *target = matrix{rows, cols, std::vector<double>(values, values + rows * cols)};
  }

 private:
  attention_trace& trace_;
};

void require_heads(const char* name, const tensor& t) {
  if (t.rank() != 2 && t.rank() != 3)
    throw error(name,
                "expected [H, N, features] or [N, features], got shape " + to_string(t.shape()));
}

// [H,N,f] or [N,f] -> [1,H,N,f], the layout sdpa takes.
tensor as_batch_of_one(const tensor& t) {
  return t.reshaped({1, t.rank() == 3 ? t.size(0) : 1, t.size(-2), t.size(-1)});
}

}  // namespace

std::vector<std::string> split_tokens(const std::string& text) {
  std::vector<std::string> tokens;
  std::istringstream in(text);
  for (std::string word; in >> word;) tokens.push_back(word);
  return tokens;
}

attention_trace trace_attention(const tensor& q, const tensor& k, const tensor& v,
                                std::vector<std::string> tokens, bool causal,
                                std::optional<float> scale) {
  require_heads("q", q);
  require_heads("k", k);
  require_heads("v", v);
  if (q.size(-2) != k.size(-2))
    throw error("q, k: self-attention needs as many queries as keys (q " + to_string(q.shape()) +
                ", k " + to_string(k.shape()) + ")");
  sdpa_options options;
  options.causal = causal ? causal_mode::top_left : causal_mode::none;
  options.scale = scale;
  const tensor Q = as_batch_of_one(q), K = as_batch_of_one(k), V = as_batch_of_one(v);
  const attention_params p = make_attention_params(Q, K, V, options);  // checks; the scale
  if (p.Hq != p.Hkv)
    throw error("q, k: explain shows one kv head per query head (q " + to_string(q.shape()) +
                ", k " + to_string(k.shape()) + ")");

  attention_trace trace;
  trace.tokens = std::move(tokens);
  if (trace.tokens.empty())
    for (int64_t i = 0; i < p.Nq; ++i)
      trace.tokens.push_back(std::string("t").append(std::to_string(i)));
  if (static_cast<int64_t>(trace.tokens.size()) != p.Nq)
    throw error("tokens", std::to_string(trace.tokens.size()) + " labels given for " +
                              std::to_string(p.Nq) + " tokens, one per row (q " +
                              to_string(q.shape()) + ")");
  trace.scale = p.scale;
  trace.causal = causal;
  trace.heads.resize(static_cast<size_t>(p.Hq));
  for (int64_t h = 0; h < p.Hq; ++h) {
    head_trace& head = trace.heads[static_cast<size_t>(h)];
    head.q = head_matrix(Q, h);
    head.k = head_matrix(K, h);
    head.v = head_matrix(V, h);
  }
  trace_recorder recorder(trace);
  options.observer = &recorder;
  sdpa_forward(Q, K, V, options);
  return trace;
}

attention_trace trace_self_attention(const nn::self_attention& layer, const tensor& x,
                                     std::vector<std::string> tokens, bool causal,
                                     std::optional<float> scale) {
  if (x.rank() != 2) throw error("x", "expected X [N, d_model], got shape " + to_string(x.shape()));
  // Counted against X, the input the labels name, before the projections make q out of it.
  if (!tokens.empty() && static_cast<int64_t>(tokens.size()) != x.size(0))
    throw error("tokens", std::to_string(tokens.size()) + " labels given for the " +
                              std::to_string(x.size(0)) + " rows of X " + to_string(x.shape()) +
                              ", one label per row");
  const nn::qkv_projections p = layer.project(x);
  attention_trace trace = trace_attention(p.q, p.k, p.v, std::move(tokens), causal, scale);
  trace.x = head_matrix(x, 0);
  return trace;
}

}  // namespace qkv::explain
