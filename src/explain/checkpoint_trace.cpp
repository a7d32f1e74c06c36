// Explaining a character-level GPT: a layer's Q, K, V heads from the model, attention from the
// reference kernel (trace_attention), and the word table aggregated from the character weights.
#include "qkv/explain/checkpoint_trace.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "format.hpp"
#include "qkv/error.hpp"
#include "qkv/explain/render_json.hpp"

namespace qkv::explain {
namespace {

// Head h of a [H,T,f] tensor as a [1,T,f] tensor.
tensor one_head(const tensor& t, int64_t h) {
  const int64_t T = t.size(1), f = t.size(2);
  const float* base = t.data() + h * T * f;
  return tensor({1, T, f}, std::vector<float>(base, base + T * f));
}

// The character ranges [first, last) of the space-separated words of `text`.
struct word_span {
  std::string word;
  int64_t first, last;
};
std::vector<word_span> word_spans(const std::string& text) {
  std::vector<word_span> spans;
  const int64_t n = static_cast<int64_t>(text.size());
  for (int64_t i = 0; i < n;) {
    if (text[static_cast<size_t>(i)] == ' ') {
      ++i;
      continue;
    }
    int64_t j = i;
    while (j < n && text[static_cast<size_t>(j)] != ' ') ++j;
    spans.push_back({text.substr(static_cast<size_t>(i), static_cast<size_t>(j - i)), i, j});
    i = j;
  }
  return spans;
}

}  // namespace

const char* const word_table_rule =
    "Word table: for a character-level model, a word's weight to another word is the sum of its "
    "weights over the other word's (key) characters, averaged over its own (query) characters; "
    "spaces belong to no word.";

std::vector<std::string> character_labels(const std::string& text) {
  std::vector<std::string> labels;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == ' ') {
      labels.emplace_back("\u2423");  // ␣, the visible space
    } else if (c == '\n') {
      labels.emplace_back("\\n");
    } else if (byte < 0x20 || byte >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", byte);
      labels.emplace_back(hex);
    } else {
      labels.emplace_back(1, c);
    }
  }
  return labels;
}

attention_trace trace_gpt_layer(const nn::gpt& model, const std::vector<int32_t>& ids,
                                const std::string& text, int64_t layer,
                                std::optional<int64_t> head) {
  const nn::gpt_config& c = model.config();
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T < 1 || T > c.context || ids.size() != text.size())
    throw error("text: needs 1 to " + std::to_string(c.context) +
                " characters (the model's context), got " + std::to_string(text.size()));
  if (head && (*head < 0 || *head >= c.heads))
    throw error("head: must be in [0, " + std::to_string(c.heads) + "), the model has " +
                std::to_string(c.heads) + " heads per layer; got " + std::to_string(*head));
  nn::gpt_attention_heads qkv = model.attention_heads(ids, layer);
  if (head) qkv = {one_head(qkv.q, *head), one_head(qkv.k, *head), one_head(qkv.v, *head)};
  return trace_attention(qkv.q, qkv.k, qkv.v, character_labels(text), true);
}

word_table aggregate_words(const matrix& weights, const std::string& text) {
  const std::vector<word_span> spans = word_spans(text);
  const int64_t W = static_cast<int64_t>(spans.size());
  word_table table{{}, {W, W, std::vector<double>(static_cast<size_t>(W * W), 0.0)}};
  for (int64_t p = 0; p < W; ++p) {
    table.words.push_back(spans[static_cast<size_t>(p)].word);
    const word_span& query = spans[static_cast<size_t>(p)];
    for (int64_t q = 0; q < W; ++q) {
      const word_span& key = spans[static_cast<size_t>(q)];
      double sum = 0.0;
      for (int64_t i = query.first; i < query.last; ++i)
        for (int64_t j = key.first; j < key.last; ++j) sum += weights(i, j);
      table.weights.values[static_cast<size_t>(p * W + q)] =
          sum / static_cast<double>(query.last - query.first);
    }
  }
  return table;
}

std::string render_word_tables(const std::vector<word_table>& tables) {
  std::string out = std::string(word_table_rule) + "\n";
  for (size_t h = 0; h < tables.size(); ++h) {
    const word_table& t = tables[h];
    if (tables.size() > 1) out += "Head " + std::to_string(h) + ":\n";
    for (int64_t p = 0; p < t.weights.rows; ++p) {
      const int64_t q = detail::most_attended_key(t.weights, p);
      char probability[32];
      std::snprintf(probability, sizeof probability, "%.3f", t.weights(p, q));
      out += "  for the word \"" + t.words[static_cast<size_t>(p)] +
             "\", the most related word is \"" + t.words[static_cast<size_t>(q)] +
             "\", with probability " + probability + "\n";
    }
  }
  return out;
}

std::string render_json_with_words(const attention_trace& trace,
                                   const std::vector<word_table>& tables) {
  nlohmann::json out = nlohmann::json::parse(render_json(trace));
  out["word_rule"] = word_table_rule;
  nlohmann::json& list = out["word_tables"] = nlohmann::json::array();
  for (const word_table& t : tables) {
    nlohmann::json rows = nlohmann::json::array(), summary = nlohmann::json::array();
    for (int64_t p = 0; p < t.weights.rows; ++p) {
      nlohmann::json row = nlohmann::json::array();
      for (int64_t q = 0; q < t.weights.cols; ++q) row.push_back(t.weights(p, q));
      rows.push_back(std::move(row));
      const int64_t q = detail::most_attended_key(t.weights, p);
      summary.push_back({{"query", t.words[static_cast<size_t>(p)]},
                         {"key", t.words[static_cast<size_t>(q)]},
                         {"probability", t.weights(p, q)}});
    }
    list.push_back({{"words", t.words}, {"weights", rows}, {"summary", summary}});
  }
  return out.dump() + "\n";
}

}  // namespace qkv::explain
