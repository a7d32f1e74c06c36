#!/usr/bin/env bash
# ThreadSanitizer over the parallel code: the kernel tests (reference, fused forward and backward,
# dropout, merge) and the training tests, built with clang and -fsanitize=thread in build-tsan/
# (or $QKV_TSAN_BUILD_DIR), run with several threads so that the parallel loops really race if
# they can. Exits non-zero on any report.
#
# OpenMP under TSan: GCC's libgomp synchronises in ways TSan cannot see, so every parallel loop
# would be reported. clang's -fopenmp uses LLVM's libomp instead, and Archer (libarcher.so, in
# Debian's libomp-dev) tells TSan about OpenMP's barriers, tasks and locks: with it, what TSan
# reports is real. OpenBLAS (used by the linear layers during training) is not instrumented; it
# runs single-threaded here (OPENBLAS_NUM_THREADS=1), and ignore_noninstrumented_modules keeps its
# internals out of the reports. No suppression list is needed.
# Usage: scripts/tsan.sh [extra gtest filter, default: the kernel and training suites]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${QKV_TSAN_BUILD_DIR:-build-tsan}
filter=${1:-'Reference*:FusedForward*:FusedBackward*:GoldenFused*:GoldenSdpa*:AttentionDropout*:Dropout*:Merge*:CounterRng*:SimdExp*:Threads*:AdamW*:ClipGradNorm*:LrSchedule*:Checkpoint*:Resume*:ToyTask*:Corpus*'}

bash scripts/setup.sh >/dev/null  # the Debian packages (clang, libomp-dev with Archer)
CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQKV_SANITIZE=thread \
  -DQKV_BUILD_BENCH=OFF -DQKV_BUILD_EXAMPLES=OFF -DQKV_WITH_MPI=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target qkv_tests

archer=$(clang++ -print-file-name=libarcher.so)
[ -f "$archer" ] || archer=$(find /usr/lib/llvm-*/lib -name libarcher.so | head -1)
export OMP_TOOL_LIBRARIES="$archer" ARCHER_OPTIONS=verbose=0
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1 exitcode=66"
export OPENBLAS_NUM_THREADS=1 QKV_NUM_THREADS=4 OMP_NUM_THREADS=4
"$build/tests/qkv_tests" --gtest_filter="$filter" --gtest_brief=1
echo "qkv tsan: clean ($filter)" >&2
