// The shard plans on their own (no MPI calls): which global rows each rank holds.
#ifdef QKV_WITH_MPI

#include "qkv/ring/sequence_shards.hpp"

#include <gtest/gtest.h>

#include "qkv/error.hpp"

namespace qkv::ring {
namespace {

std::vector<int64_t> rows_of(int64_t N, int rank, int P, shard_layout layout) {
  std::vector<int64_t> rows;
  for (const segment& s : shard_segments(N, rank, P, layout)) {
    EXPECT_EQ(s.local_start, static_cast<int64_t>(rows.size()));
    for (int64_t i = 0; i < s.length; ++i) rows.push_back(s.start + i);
  }
  return rows;
}

TEST(SequenceShards, ContiguousGivesTheFirstRanksTheExtraRows) {
  EXPECT_EQ(rows_of(7, 0, 3, shard_layout::contiguous), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(rows_of(7, 1, 3, shard_layout::contiguous), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(rows_of(7, 2, 3, shard_layout::contiguous), (std::vector<int64_t>{5, 6}));
}

TEST(SequenceShards, ZigzagPairsChunkRWithChunk2PMinus1MinusR) {
  // 10 rows in 4 chunks of 3, 3, 2, 2: rank 0 holds chunks 0 and 3, rank 1 chunks 1 and 2.
  EXPECT_EQ(rows_of(10, 0, 2, shard_layout::zigzag), (std::vector<int64_t>{0, 1, 2, 8, 9}));
  EXPECT_EQ(rows_of(10, 1, 2, shard_layout::zigzag), (std::vector<int64_t>{3, 4, 5, 6, 7}));
}

TEST(SequenceShards, EveryRowExactlyOnce) {
  for (shard_layout layout : {shard_layout::contiguous, shard_layout::zigzag})
    for (int P = 1; P <= 5; ++P)
      for (int64_t N = 2 * P; N < 2 * P + 9; ++N) {
        std::vector<int> seen(static_cast<size_t>(N), 0);
        for (int r = 0; r < P; ++r)
          for (int64_t i : rows_of(N, r, P, layout)) ++seen[static_cast<size_t>(i)];
        for (int count : seen) EXPECT_EQ(count, 1) << to_string(layout) << " N=" << N;
      }
}

TEST(SequenceShards, TooShortIsAnError) {
  EXPECT_THROW(shard_segments(5, 0, 3, shard_layout::zigzag), error);
  EXPECT_THROW(shard_segments(2, 0, 3, shard_layout::contiguous), error);
}

TEST(SequenceShards, TakeShardCopiesTheRowsAlongTheAxis) {
  tensor whole({2, 10});
  for (int64_t x = 0; x < whole.numel(); ++x) whole[x] = static_cast<float>(x);
  const tensor shard = take_shard(whole, 1, 0, 2, shard_layout::zigzag);
  ASSERT_EQ(shard.shape(), (shape_t{2, 5}));
  EXPECT_EQ(std::vector<float>(shard.values().begin(), shard.values().end()),
            (std::vector<float>{0, 1, 2, 8, 9, 10, 11, 12, 18, 19}));
}

}  // namespace
}  // namespace qkv::ring

#endif
