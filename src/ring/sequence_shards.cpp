// Shard plans (contiguous, zigzag) and the root <-> shards moves of
// include/qkv/ring/sequence_shards.hpp.
#include "qkv/ring/sequence_shards.hpp"

#include <algorithm>
#include <cstring>

#include "mpi_check.hpp"
#include "qkv/error.hpp"

namespace qkv::ring {
namespace {

// Row runs of a tensor seen as [outer, N, inner] around `axis`.
struct axis_view {
  int64_t outer = 1, N = 0, inner = 1;
};

axis_view view_around(const shape_t& shape, int64_t axis) {
  QKV_ASSERT(axis >= 0 && axis < static_cast<int64_t>(shape.size()));
  axis_view v;
  for (int64_t a = 0; a < axis; ++a) v.outer *= shape[static_cast<size_t>(a)];
  v.N = shape[static_cast<size_t>(axis)];
  for (size_t a = static_cast<size_t>(axis) + 1; a < shape.size(); ++a) v.inner *= shape[a];
  return v;
}

shape_t shard_shape(const shape_t& shape, int64_t axis, int64_t length) {
  shape_t s = shape;
  s[static_cast<size_t>(axis)] = length;
  return s;
}

// Calls run(whole_offset, shard_offset, count) for each contiguous run of the segments' rows
// (offsets and counts in floats).
template <typename Run>
void for_each_run(const axis_view& v, const std::vector<segment>& segments, int64_t n_shard,
                  Run run) {
  for (const segment& s : segments)
    for (int64_t o = 0; o < v.outer; ++o)
      run((o * v.N + s.start) * v.inner, (o * n_shard + s.local_start) * v.inner,
          s.length * v.inner);
}

// What scatter_sequence and gather_sequence start from: this process's rank, the number of
// ranks P, and the tensor `shape` seen around the sequence axis.
struct sequence_move {
  int rank = 0, P = 1;
  axis_view v;
};

sequence_move start_move(MPI_Comm comm, const shape_t& shape, int64_t axis) {
  sequence_move m;
  MPI_Comm_rank(comm, &m.rank);
  MPI_Comm_size(comm, &m.P);
  m.v = view_around(shape, axis);
  return m;
}

void copy_floats(float* to, const float* from, int64_t count) {
  std::memcpy(to, from, static_cast<size_t>(count) * sizeof(float));
}

}  // namespace

shard_layout parse_shard_layout(const std::string& text, const std::string& argument) {
  if (text == "contiguous") return shard_layout::contiguous;
  if (text == "zigzag") return shard_layout::zigzag;
  throw error(argument, "expected contiguous or zigzag, got '" + text + "'");
}

const char* to_string(shard_layout layout) {
  return layout == shard_layout::zigzag ? "zigzag" : "contiguous";
}

std::vector<segment> shard_segments(int64_t N, int rank, int P, shard_layout layout,
                                    const std::string& what) {
  const int64_t chunks = layout == shard_layout::zigzag ? 2 * int64_t{P} : P;
  if (N < chunks)
    throw error(what, "a sequence of " + std::to_string(N) + " rows is too short for " +
                          std::to_string(P) + " ranks in the " + to_string(layout) +
                          " layout (needs N >= " + std::to_string(chunks) +
                          (layout == shard_layout::zigzag ? " = 2P)" : " = P)"));
  // Chunk c holds N / chunks rows, and one more for the first N % chunks chunks.
  const auto chunk = [&](int64_t c) {
    const int64_t base = N / chunks, extra = N % chunks;
    return segment{c * base + std::min(c, extra), base + (c < extra ? 1 : 0), 0};
  };
  std::vector<segment> segments{chunk(rank)};
  if (layout == shard_layout::zigzag) {
    segment late = chunk(chunks - 1 - rank);
    late.local_start = segments[0].length;
    segments.push_back(late);
  }
  return segments;
}

int64_t shard_length(int64_t N, int rank, int P, shard_layout layout) {
  int64_t n = 0;
  for (const segment& s : shard_segments(N, rank, P, layout)) n += s.length;
  return n;
}

tensor take_shard(const tensor& full, int64_t axis, int rank, int P, shard_layout layout) {
  const axis_view v = view_around(full.shape(), axis);
  const auto segments = shard_segments(v.N, rank, P, layout);
  const int64_t n = shard_length(v.N, rank, P, layout);
  tensor shard(shard_shape(full.shape(), axis, n));
  for_each_run(v, segments, n, [&](int64_t w, int64_t p, int64_t count) {
    copy_floats(shard.data() + p, full.data() + w, count);
  });
  return shard;
}

tensor scatter_sequence(MPI_Comm comm, int root, const tensor& full, const shape_t& shape,
                        int64_t axis, shard_layout layout) {
  const auto [rank, P, v] = start_move(comm, shape, axis);
  if (rank != root) {
    tensor shard(shard_shape(shape, axis, shard_length(v.N, rank, P, layout)));
    QKV_MPI(MPI_Recv(shard.data(), message_count(shard.numel()), MPI_FLOAT, root, 0, comm,
                     MPI_STATUS_IGNORE));
    return shard;
  }
  QKV_ASSERT(full.shape() == shape);
  for (int r = 0; r < P; ++r) {
    if (r == root) continue;
    const tensor shard = take_shard(full, axis, r, P, layout);
    QKV_MPI(MPI_Send(shard.data(), message_count(shard.numel()), MPI_FLOAT, r, 0, comm));
  }
  return take_shard(full, axis, root, P, layout);
}

tensor gather_sequence(MPI_Comm comm, int root, const tensor& shard, const shape_t& shape,
                       int64_t axis, shard_layout layout) {
  const auto [rank, P, v] = start_move(comm, shape, axis);
  if (rank != root) {
    QKV_MPI(MPI_Send(shard.data(), message_count(shard.numel()), MPI_FLOAT, root, 0, comm));
    return tensor();
  }
  tensor full(shape);
  for (int r = 0; r < P; ++r) {
    const int64_t n = shard_length(v.N, r, P, layout);
    tensor part;
    if (r == root) {
      part = shard;
    } else {
      part = tensor(shard_shape(shape, axis, n));
      QKV_MPI(MPI_Recv(part.data(), message_count(part.numel()), MPI_FLOAT, r, 0, comm,
                       MPI_STATUS_IGNORE));
    }
    QKV_ASSERT(part.shape() == shard_shape(shape, axis, n));
    for_each_run(v, shard_segments(v.N, r, P, layout), n, [&](int64_t w, int64_t p, int64_t count) {
      copy_floats(full.data() + w, part.data() + p, count);
    });
  }
  return full;
}

}  // namespace qkv::ring
