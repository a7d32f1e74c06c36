// Attention as a soft database lookup: a hotel's guest list, last names as keys and room numbers
// as values. The mistyped query "Stammer" matches no key exactly, yet attention returns
// Starmer's room, 537, because the keys whose spelling is closest get nearly all the weight.
//
// The embedding that makes similar spellings similar: a name becomes the counts of its letter
// pairs (bigrams), with ^ and $ marking its start and end, normalised to length 1:
//   "stammer" -> ^s st ta am mm me er r$,   "starmer" -> ^s st ta ar rm me er r$.
// A typo changes only the (at most two) bigrams that touch the wrong letter, so the two vectors
// share 6 of 8 bigrams: their dot product (the cosine) is 6/8 = 0.75, while unrelated names
// share one or two bigrams. A one-hot code per name would make every typo orthogonal to every
// key (dot product 0); a semantic word embedding places names by the company they keep in text,
// not by their spelling. The query-key dot product of attention then measures spelling overlap.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "qkv/attention.hpp"

namespace {

constexpr int symbols = 27;  // a..z and the boundary mark (^ at the start, $ at the end)
constexpr int dims = symbols * symbols;

int symbol(char c) {
  return c >= 'a' && c <= 'z' ? c - 'a' : c >= 'A' && c <= 'Z' ? c - 'A' : 26;
}

// The normalised bigram counts of `name`, written into `out` (dims floats).
void embed(const std::string& name, float* out) {
  const std::string marked = "^" + name + "$";
  std::vector<double> counts(dims, 0.0);
  for (size_t i = 0; i + 1 < marked.size(); ++i)
    counts[symbol(marked[i]) * symbols + symbol(marked[i + 1])] += 1.0;
  double norm = 0.0;
  for (double c : counts) norm += c * c;
  for (int e = 0; e < dims; ++e) out[e] = static_cast<float>(counts[e] / std::sqrt(norm));
}

struct guest {
  std::string last_name;
  int room;
};

}  // namespace

int main() {
  const std::vector<guest> guests = {{"Thatcher", 826}, {"Major", 713},   {"Blair", 609},
                                     {"Brown", 421},    {"Cameron", 318}, {"May", 254},
                                     {"Johnson", 204},  {"Starmer", 537}, {"Sunak", 112}};
  const std::string query = "Stammer";
  const int64_t N = static_cast<int64_t>(guests.size());

  // Q [1,1,1,dims], K [1,1,N,dims] (the names), V [1,1,N,1] (the room numbers).
  qkv::tensor q({1, 1, 1, dims}), k({1, 1, N, dims}), v({1, 1, N, 1});
  embed(query, q.data());
  for (int64_t j = 0; j < N; ++j) {
    embed(guests[j].last_name, k.data() + j * dims);
    v[j] = static_cast<float>(guests[j].room);
  }

  // A database answers only an exact match.
  const auto exact = std::find_if(guests.begin(), guests.end(),
                                  [&](const guest& g) { return g.last_name == query; });
  std::printf(
      "Exact lookup of \"%s\" in the guest list: %s.\n\n", query.c_str(),
      exact == guests.end() ? "no such guest" : ("room " + std::to_string(exact->room)).c_str());
  std::printf("Soft lookup by attention, weights = softmax(scale * q.k):\n");
  std::printf("  %-9s %5s %12s %8s\n", "guest", "room", "q.k (cosine)", "weight");
  // A scale of 20 (a temperature of 1/20) makes a cosine gap of 0.375 a factor e^7.5 = 1800.
  qkv::sdpa_options options;
  options.scale = 20.0f;
  const qkv::sdpa_result result = qkv::sdpa_forward(q, k, v, options);
  const double lse = result.lse[0];
  for (int64_t j = 0; j < N; ++j) {
    double cosine = 0.0;
    for (int e = 0; e < dims; ++e) cosine += static_cast<double>(q[e]) * k[j * dims + e];
    // The weight softmax gave this key: exp(scale * q.k - lse).
    const double weight = std::exp(*options.scale * cosine - lse);
    std::printf("  %-9s %5d %12.3f %7.2f%%\n", guests[j].last_name.c_str(), guests[j].room, cosine,
                100.0 * weight);
  }
  const double answer = result.out[0];
  std::printf("\nThe answer, the weighted sum of the room numbers: %.2f\n", answer);
  std::printf("\"%s\" is staying in room %ld.\n", query.c_str(), std::lround(answer));
  return 0;
}
