// Ring attention under MPI: run by ctest as `mpirun -np P qkv_ring_tests` for P = 1..4. Every
// rank builds the same whole inputs from a seed, runs the ring on its shards, and compares them
// with the single-process result's shards (docs/contracts.md section 3's fused tolerances).
// Verdicts are reduced over the ranks first, so every rank takes the same path and none waits
// forever.
#include <gtest/gtest.h>
#include <mpi.h>

#include <limits>
#include <random>

#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "qkv/ring/ring_attention.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv::ring {
namespace {

int comm_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int comm_size() {
  int p = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  return p;
}
double max_over_ranks(double x) {
  double y = 0;
  MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return y;
}

enum class padding { none, boolean, additive };

// Score modifiers in global positions: a window (left >= -1 when given), a softcap, ALiBi
// slopes, sinks.
struct ring_mods {
  int64_t left = -2, right = -1;
  float softcap = 0.0f;
  bool alibi = false, sinks = false;
};

struct ring_case {
  const char* name;
  int64_t B, Hq, Hkv, Nq, Nk, d, dv;
  causal_mode causal;
  shard_layout layout;
  padding pad;
  ring_mods mods = {};
};

// |ring - single process| / tolerance on this rank's shard, the worst over the ranks:
// tolerance = base·max(1, max|expected|) over the whole expected tensor.
double error_ratio(const tensor& got, const tensor& whole, int64_t axis, shard_layout layout,
                   double base) {
  const tensor expected = take_shard(whole, axis, comm_rank(), comm_size(), layout);
  const double tol = base * std::max(1.0, testing::max_abs(whole));
  return max_over_ranks(testing::max_abs_diff(got, expected) / tol);
}

void PrintTo(const ring_case& c, std::ostream* os) {
  *os << c.name;
}

class Ring : public ::testing::TestWithParam<ring_case> {};

TEST_P(Ring, ForwardAndBackwardEqualSingleProcess) {
  const ring_case& c = GetParam();
  const int rank = comm_rank(), P = comm_size();
  std::mt19937_64 rng(1234);
  const auto [q, k, v, g] = testing::random_attention_inputs(c, rng);

  sdpa_options single;
  single.causal = c.causal;
  ring_options ring;
  ring.causal = c.causal;
  ring.layout = c.layout;
  // Key padding: batch 0 hides its first three keys (so that under a causal mask early queries
  // see no key at all: lse = -inf rows), the others every third key.
  if (c.pad != padding::none) {
    bool_tensor visible({c.B, 1, 1, c.Nk}, 1);
    for (int64_t j = 0; j < c.Nk; ++j) visible.at({0, 0, 0, j}) = j >= 3;
    for (int64_t b = 1; b < c.B; ++b)
      for (int64_t j = 0; j < c.Nk; ++j) visible.at({b, 0, 0, j}) = j % 3 != 1;
    // The ring takes this rank's keys of the padding, [B,nk] (boolean) or [B,1,1,nk] (float).
    const tensor as_float = [&] {
      tensor t({c.B, 1, 1, c.Nk});
      for (int64_t x = 0; x < t.numel(); ++x)
        t[x] =
            visible[x] ? 0.5f * static_cast<float>(x % 5) : -std::numeric_limits<float>::infinity();
      return t;
    }();
    const tensor mine = take_shard(as_float, 3, rank, P, c.layout);
    if (c.pad == padding::boolean) {
      single.mask.boolean = visible;
      bool_tensor b({c.B, mine.size(3)});
      for (int64_t x = 0; x < b.numel(); ++x) b[x] = mine[x] > -1.0f;
      ring.key_padding.boolean = b;
    } else {
      single.mask.additive = as_float;
      ring.key_padding.additive = mine;
    }
  }

  score_modifiers& mods = single.modifiers;
  if (c.mods.left >= -1) mods.window = attention_window{c.mods.left, c.mods.right};
  if (c.mods.softcap != 0.0f) mods.softcap = c.mods.softcap;
  if (c.mods.alibi) {
    tensor slopes({c.Hq});
    for (int64_t h = 0; h < c.Hq; ++h) slopes[h] = 0.5f / static_cast<float>(h + 1);
    mods.alibi_slopes = slopes;
  }
  if (c.mods.sinks) mods.sinks = testing::random_tensor({c.Hq}, rng);
  ring.modifiers = mods;

  const sdpa_result whole = sdpa_forward(q, k, v, single);
  const sdpa_gradients whole_grads = sdpa_backward(q, k, v, whole, g, single);

  const auto shard = [&](const tensor& t) { return take_shard(t, 2, rank, P, c.layout); };
  const tensor qs = shard(q), ks = shard(k), vs = shard(v), gs = shard(g);
  const sdpa_result out = ring_forward(MPI_COMM_WORLD, qs, ks, vs, ring);
  EXPECT_LE(error_ratio(out.out, whole.out, 2, c.layout, 2e-5), 1.0) << "out";
  EXPECT_LE(error_ratio(out.lse, whole.lse, 2, c.layout, 2e-5), 1.0) << "lse";
  const sdpa_gradients grads = ring_backward(MPI_COMM_WORLD, qs, ks, vs, out, gs, ring);
  EXPECT_LE(error_ratio(grads.dq, whole_grads.dq, 2, c.layout, 1e-4), 1.0) << "dq";
  EXPECT_LE(error_ratio(grads.dk, whole_grads.dk, 2, c.layout, 1e-4), 1.0) << "dk";
  EXPECT_LE(error_ratio(grads.dv, whole_grads.dv, 2, c.layout, 1e-4), 1.0) << "dv";
  if (c.mods.sinks) {  // the same sum over every rank's rows on every rank
    EXPECT_LE(max_over_ranks(testing::max_abs_diff(grads.dsinks, whole_grads.dsinks)),
              1e-4 * std::max(1.0, testing::max_abs(whole_grads.dsinks)))
        << "dsinks";
  }
}

constexpr auto none = causal_mode::none, top_left = causal_mode::top_left,
               bottom_right = causal_mode::bottom_right;
constexpr auto contiguous = shard_layout::contiguous, zigzag = shard_layout::zigzag;

// Awkward sizes: 13 and 17 rows shard unevenly over 2, 3 and 4 ranks; Nq != Nk; GQA and MQA.
const ring_case cases[] = {
    {"plain", 2, 2, 2, 13, 13, 5, 7, none, contiguous, padding::none},
    {"plain_zigzag", 1, 3, 3, 17, 17, 8, 8, none, zigzag, padding::none},
    {"cross_lengths", 1, 2, 2, 11, 19, 16, 4, none, contiguous, padding::none},
    {"causal_top_left", 2, 2, 2, 13, 13, 5, 7, top_left, contiguous, padding::none},
    {"causal_top_left_zigzag", 1, 2, 2, 17, 17, 16, 16, top_left, zigzag, padding::none},
    {"causal_top_left_nq_lt_nk", 1, 2, 1, 9, 14, 8, 8, top_left, zigzag, padding::none},
    {"causal_bottom_right", 1, 2, 2, 11, 19, 8, 6, bottom_right, contiguous, padding::none},
    {"causal_bottom_right_zigzag", 2, 1, 1, 9, 21, 4, 4, bottom_right, zigzag, padding::none},
    // Nq > Nk bottom-right: the first queries see no key (lse = -inf, O = 0 across the merge).
    {"causal_bottom_right_empty_rows", 1, 2, 2, 14, 6, 8, 8, bottom_right, contiguous,
     padding::none},
    {"gqa_causal_zigzag", 2, 4, 2, 16, 16, 8, 5, top_left, zigzag, padding::none},
    {"mqa_padding", 2, 4, 1, 13, 13, 8, 8, none, contiguous, padding::boolean},
    {"padding_causal_zigzag", 2, 2, 2, 17, 17, 8, 8, top_left, zigzag, padding::boolean},
    {"float_padding_bottom_right", 2, 2, 1, 10, 15, 6, 6, bottom_right, zigzag, padding::additive},
    // Modifiers in global positions; windows that skip whole blocks and leave rows empty.
    {"window_causal_zigzag", 1, 2, 2, 17, 17, 8, 8, top_left, zigzag, padding::none, {3, 0}},
    {"window_two_sided", 2, 2, 1, 13, 19, 8, 8, none, contiguous, padding::none, {2, 4}},
    {"window_empty_rows_sinks",
     1,
     2,
     2,
     14,
     6,
     8,
     8,
     none,
     contiguous,
     padding::none,
     {0, 0, 0.0f, false, true}},
    {"softcap_alibi_sinks",
     1,
     4,
     2,
     13,
     13,
     8,
     8,
     bottom_right,
     zigzag,
     padding::boolean,
     {-1, -1, 2.5f, true, true}},
    {"all_modifiers",
     2,
     2,
     2,
     17,
     17,
     8,
     6,
     top_left,
     zigzag,
     padding::additive,
     {5, 0, 4.0f, true, true}},
};

INSTANTIATE_TEST_SUITE_P(Cases, Ring, ::testing::ValuesIn(cases),
                         [](const auto& info) { return std::string(info.param.name); });

// Runs `body` on every rank; expects every rank to throw a qkv::error containing `needle`.
template <typename Body>
void expect_error_on_every_rank(Body body, const std::string& needle) {
  double failed = 1.0;
  std::string message;
  try {
    body();
  } catch (const error& e) {
    message = e.what();
    failed = message.find(needle) == std::string::npos ? 1.0 : 0.0;
  }
  EXPECT_EQ(max_over_ranks(failed), 0.0) << "rank " << comm_rank() << ": '" << message << "'";
}

struct small_inputs {
  tensor q, k, v;
  explicit small_inputs(int64_t n, int64_t d = 4) {
    std::mt19937_64 rng(7);
    q = testing::random_tensor({1, 2, n, d}, rng);
    k = testing::random_tensor({1, 2, n, d}, rng);
    v = testing::random_tensor({1, 2, n, d}, rng);
  }
};

TEST(RingErrors, MismatchedShapesAcrossRanks) {
  if (comm_size() < 2) GTEST_SKIP() << "needs two ranks";
  const small_inputs in(3, comm_rank() == 1 ? 6 : 4);  // rank 1 has another head dim
  expect_error_on_every_rank([&] { ring_forward(MPI_COMM_WORLD, in.q, in.k, in.v); },
                             "mismatched shapes across ranks");
}

TEST(RingErrors, TheReferenceKernelIsRefused) {
  const small_inputs in(2 * comm_size());
  ring_options options;
  options.run.impl = sdpa_impl::reference;
  expect_error_on_every_rank([&] { ring_forward(MPI_COMM_WORLD, in.q, in.k, in.v, options); },
                             "impl: ring attention runs the fused kernel on each block");
}

TEST(RingErrors, InvalidInputOnOneRankIsReportedOnEvery) {
  small_inputs in(3);
  if (comm_rank() == comm_size() - 1) in.v = tensor({1, 2, 2, 4});  // Nk of v != Nk of k
  expect_error_on_every_rank([&] { ring_forward(MPI_COMM_WORLD, in.q, in.k, in.v); },
                             "rank " + std::to_string(comm_size() - 1) + ": v: key count");
}

TEST(RingErrors, ZigzagNeedsTwoRowsPerRank) {
  const int64_t n = 2 * comm_size() - 1;  // the whole sequence; one row short of 2P
  const small_inputs whole(n);
  ring_options options;
  options.layout = shard_layout::contiguous;
  const auto mine = [&](const tensor& t) {
    return take_shard(t, 2, comm_rank(), comm_size(), options.layout);
  };
  options.layout = shard_layout::zigzag;
  expect_error_on_every_rank(
      [&] { ring_forward(MPI_COMM_WORLD, mine(whole.q), mine(whole.k), mine(whole.v), options); },
      "too short");
}

TEST(RingErrors, ShardsNotCutByTheLayout) {
  if (comm_size() < 2) GTEST_SKIP() << "needs two ranks";
  const small_inputs in(comm_rank() == 0 ? 4 : 2);  // 2P + 2 rows: 3 or 2 each, not 4 and 2
  expect_error_on_every_rank([&] { ring_forward(MPI_COMM_WORLD, in.q, in.k, in.v); },
                             "layout of Nq");
}

TEST(RingErrors, DenseMaskRefused) {
  const small_inputs in(3);
  ring_options options;
  options.key_padding.boolean = bool_tensor({3, 3}, 1);  // [Nq,Nk]: not key padding
  expect_error_on_every_rank([&] { ring_forward(MPI_COMM_WORLD, in.q, in.k, in.v, options); },
                             "dense [Nq,Nk] mask is refused");
}

TEST(RingErrors, BackwardChecksItsInputsCollectively) {
  const small_inputs in(3);
  const sdpa_result out = ring_forward(MPI_COMM_WORLD, in.q, in.k, in.v);
  const tensor g = comm_rank() == 0 ? tensor({1, 2, 3, 5}) : tensor({1, 2, 3, 4});
  expect_error_on_every_rank([&] { ring_backward(MPI_COMM_WORLD, in.q, in.k, in.v, out, g); },
                             "rank 0: grad_out");
}

TEST(RingStats, CountsTheBytesOfTheRing) {
  const small_inputs in(5);
  ring_stats stats;
  ring_options options;
  options.stats = &stats;
  ring_forward(MPI_COMM_WORLD, in.q, in.k, in.v, options);
  // P - 1 steps, each sending one K/V block of 2 heads x 5 rows x (4 + 4) floats.
  EXPECT_EQ(stats.bytes_sent, int64_t{comm_size() - 1} * 2 * 5 * 8 * 4);
}

}  // namespace
}  // namespace qkv::ring

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  // One report, from rank 0; the verdicts are already the same on every rank.
  if (qkv::ring::comm_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any;
}
