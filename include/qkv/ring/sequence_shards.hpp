// How a sequence of N rows is cut into per-rank shards for ring attention, and the moves of
// whole tensors between one root rank and the shards (scatter, gather) along a sequence axis.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "qkv/tensor.hpp"

namespace qkv::ring {

// contiguous: rank r holds rows [r·N/P, (r+1)·N/P) (the first N % P ranks one row more).
// zigzag: the rows are cut into 2P chunks and rank r holds chunks r and 2P-1-r, so that under a
// causal mask every rank has the same amount of work (the early chunk sees few keys, the late
// one many). Needs N >= 2P.
enum class shard_layout { contiguous, zigzag };

shard_layout parse_shard_layout(const std::string& text, const std::string& argument);
const char* to_string(shard_layout layout);

// A run of consecutive global rows held by a rank: global rows [start, start + length), stored
// at local rows [local_start, local_start + length) of the rank's shard.
struct segment {
  int64_t start = 0, length = 0, local_start = 0;
};

// The segments of `rank`'s shard (one for contiguous, two for zigzag), in local order.
// Throws qkv::error naming `what` when N is too short for P ranks (N >= P, zigzag N >= 2P).
std::vector<segment> shard_segments(int64_t N, int rank, int P, shard_layout layout,
                                    const std::string& what = "sequence");
// The number of rows of `rank`'s shard.
int64_t shard_length(int64_t N, int rank, int P, shard_layout layout);

// `rank`'s shard of `full` along `axis` (a copy): what scatter_sequence delivers to that rank.
tensor take_shard(const tensor& full, int64_t axis, int rank, int P, shard_layout layout);

// Root sends each rank its shard of `full` (read on root only) along `axis`; every rank returns
// its own shard. `shape` is the whole tensor's shape, known on every rank.
tensor scatter_sequence(MPI_Comm comm, int root, const tensor& full, const shape_t& shape,
                        int64_t axis, shard_layout layout);
// The inverse: root returns the whole tensor of `shape` (N along `axis`); other ranks an empty one.
tensor gather_sequence(MPI_Comm comm, int root, const tensor& shard, const shape_t& shape,
                       int64_t axis, shard_layout layout);

}  // namespace qkv::ring
