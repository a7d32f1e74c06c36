// Words from token texts, weights between words, and attention rollout: the computations behind
// the model views, done once here so that every rendering shows the same numbers.
#include "qkv/explain/attention_map.hpp"

#include "format.hpp"
#include "qkv/error.hpp"

namespace qkv::explain {
namespace {

constexpr const char* whitespace = " \t\n\r\f\v";

matrix zeros(int64_t rows, int64_t cols) {
  return {rows, cols, std::vector<double>(static_cast<size_t>(rows * cols), 0.0)};
}

double& at(matrix& m, int64_t i, int64_t j) {
  return m.values[static_cast<size_t>(i * m.cols + j)];
}

}  // namespace

const char* const word_rule =
    "Word table: a word's weight to another word is the sum of its weights over the other "
    "word's (key) tokens, averaged over its own (query) tokens; spaces belong to no word, so a "
    "row sums to at most 1.";

const char* const rollout_rule =
    "Attention rollout (Abnar & Zuidema, 2020): in each layer, average the heads' weights, add "
    "the identity (the residual connection) and renormalise each row to sum to 1; then multiply "
    "these matrices through the layers, the last layer's on the left. Row i: how much of each "
    "input token flows into token i after the last layer.";

std::vector<word_span> group_words(const std::vector<std::string>& tokens) {
  std::vector<word_span> words;
  bool open = false;  // the text so far ends inside a word
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    const size_t first = t.find_first_not_of(whitespace);
    if (first == std::string::npos) {
      open = false;
      continue;
    }
    const int64_t index = static_cast<int64_t>(i);
    if (first > 0 || !open) words.push_back({"", index, index});
    const size_t last = t.find_last_not_of(whitespace);
    words.back().text += t.substr(first, last + 1 - first);
    words.back().last = index + 1;
    open = last + 1 == t.size();
  }
  return words;
}

matrix aggregate_words(const matrix& weights, const std::vector<word_span>& words) {
  const int64_t W = static_cast<int64_t>(words.size());
  matrix table = zeros(W, W);
  for (int64_t p = 0; p < W; ++p) {
    const word_span& query = words[static_cast<size_t>(p)];
    for (int64_t q = 0; q < W; ++q) {
      const word_span& key = words[static_cast<size_t>(q)];
      double sum = 0.0;
      for (int64_t i = query.first; i < query.last; ++i)
        for (int64_t j = key.first; j < key.last; ++j) sum += weights(i, j);
      at(table, p, q) = sum / static_cast<double>(query.last - query.first);
    }
  }
  return table;
}

matrix attention_rollout(const std::vector<std::vector<matrix>>& layers) {
  if (layers.empty() || layers.front().empty())
    throw error("attention rollout: needs at least one layer with one head");
  const int64_t T = layers.front().front().rows;
  matrix rollout = zeros(T, T);
  for (int64_t i = 0; i < T; ++i) at(rollout, i, i) = 1.0;
  for (const std::vector<matrix>& heads : layers) {
    // A = rows_normalised(mean_h(P_h) + I)
    matrix a = zeros(T, T);
    for (const matrix& p : heads)
      for (size_t e = 0; e < a.values.size(); ++e) a.values[e] += p.values[e];
    for (int64_t i = 0; i < T; ++i) {
      double sum = 0.0;
      for (int64_t j = 0; j < T; ++j) {
        at(a, i, j) = a(i, j) / static_cast<double>(heads.size()) + (i == j ? 1.0 : 0.0);
        sum += a(i, j);
      }
      for (int64_t j = 0; j < T; ++j) at(a, i, j) /= sum;
    }
    // rollout = A · rollout
    matrix next = zeros(T, T);
    for (int64_t i = 0; i < T; ++i)
      for (int64_t k = 0; k < T; ++k)
        for (int64_t j = 0; j < T; ++j) at(next, i, j) += a(i, k) * rollout(k, j);
    rollout = std::move(next);
  }
  return rollout;
}

attention_map map_of_layers(std::vector<std::vector<head_trace>> layers,
                            std::vector<std::string> tokens, bool causal,
                            const map_selection& selection) {
  attention_map map;
  map.tokens = std::move(tokens);
  map.causal = causal;
  map.model_layers = static_cast<int64_t>(layers.size());
  map.model_heads = layers.empty() ? 0 : static_cast<int64_t>(layers.front().size());
  if (selection.layer) detail::check_range("layer", *selection.layer, map.model_layers, "layers");
  if (selection.head)
    detail::check_range("head", *selection.head, map.model_heads, "heads per layer");
  std::vector<std::vector<matrix>> weights;
  for (int64_t l = 0; l < map.model_layers; ++l) {
    weights.emplace_back();
    for (int64_t h = 0; h < map.model_heads; ++h) {
      head_trace& steps = layers[static_cast<size_t>(l)][static_cast<size_t>(h)];
      weights.back().push_back(steps.weights);
      if ((selection.layer && *selection.layer != l) || (selection.head && *selection.head != h))
        continue;
      if (!selection.steps) {  // the weights (and which keys the mask hid) alone
        head_trace kept;
        kept.masked = std::move(steps.masked);
        kept.weights = std::move(steps.weights);
        steps = std::move(kept);
      }
      map.heads.push_back({l, h, std::move(steps)});
    }
  }
  map.rollout = attention_rollout(weights);
  return map;
}

attention_map map_of_trace(const attention_trace& trace) {
  attention_map map;
  map.title = trace.title;
  map.tokens = trace.tokens;
  map.causal = trace.causal;
  map.scale = trace.scale;
  map.x = trace.x;
  map.model_layers = 1;
  map.model_heads = static_cast<int64_t>(trace.heads.size());
  for (size_t h = 0; h < trace.heads.size(); ++h)
    map.heads.push_back({0, static_cast<int64_t>(h), trace.heads[h]});
  return map;
}

}  // namespace qkv::explain
