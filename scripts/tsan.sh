#!/usr/bin/env bash
# ThreadSanitizer over the parallel code: the attention kernels (reference, fused forward and
# backward on several threads, score modifiers, the NaN rule, dropout, the merge, strided views),
# the thread-count rule and the KV cache, and the training tests (the GPT's forward and backward,
# the optimiser, checkpoints and resume), built with clang and -fsanitize=thread in build-tsan/
# (or $QKV_TSAN_BUILD_DIR) and run with 2 OpenMP threads. Exits non-zero on any report.
# docs/reliability.md says what runs and why it needs no suppression list.
#
# OpenMP: GCC's libgomp synchronises in ways TSan cannot see, so every parallel loop would be
# reported. clang's -fopenmp links LLVM's libomp instead, and Archer (libarcher.so, in Debian's
# libomp-dev) tells TSan about OpenMP's barriers, tasks and locks: what TSan reports is then real.
# OpenBLAS and oneDNN (the linear layers' sgemm) are not instrumented: OpenBLAS runs single-
# threaded here and ignore_noninstrumented_modules keeps both libraries' internals out of the
# reports. ASLR: TSan before LLVM 18 cannot map its shadow memory under the high-entropy ASLR of
# newer kernels (vm.mmap_rnd_bits > 28); `setarch -R` turns ASLR off for this process alone.
#
# Usage: scripts/tsan.sh [gtest filter, default: the suites below]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${QKV_TSAN_BUILD_DIR:-build-tsan}
kernels='*FusedForward*:*FusedBackward*:*ScoreModifiers*:*NanRule*:*HugeNegativeMasks*'
kernels+=':Reference.*:AttentionDropout*:Merge*:Kernels/StridedViews*:Threads*:KvCache*'
training='GptGrad*:Gpt.*:AdamW*:ClipGradNorm*:LrSchedule*:CheckpointFile*:Resume*:ToyTask*'
training+=':Dropout.*:CounterRng*:MhaGrad*'
filter=${1:-"$kernels:$training"}

# The Debian packages (clang, libomp-dev with Archer), then the build with clang. PRE_TEST: the
# build does not run the test binary to list its tests (ctest is not used here).
CXX=clang++ QKV_BUILD_DIR="$build" QKV_BUILD_TYPE=Sanitize \
  QKV_CMAKE_ARGS="-DQKV_SANITIZE=thread -DQKV_BUILD_BENCH=OFF -DQKV_BUILD_EXAMPLES=OFF \
  -DQKV_WITH_MPI=OFF -DQKV_BUILD_PYTHON=OFF -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST \
  ${QKV_CMAKE_ARGS:-}" bash scripts/setup.sh

archer=$(clang++ -print-file-name=libarcher.so)
[ -f "$archer" ] || archer=$(find /usr/lib/llvm-*/lib -name libarcher.so | head -1)
[ -f "$archer" ] || { echo "qkv tsan: libarcher.so not found (Debian: libomp-dev)" >&2; exit 2; }
export OMP_TOOL_LIBRARIES="$archer" ARCHER_OPTIONS=verbose=0
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1 exitcode=66"
export OPENBLAS_NUM_THREADS=1 QKV_NUM_THREADS=2 OMP_NUM_THREADS=2
no_aslr=()
setarch "$(uname -m)" -R true 2>/dev/null && no_aslr=(setarch "$(uname -m)" -R)
"${no_aslr[@]}" "$build/tests/qkv_tests" --gtest_filter="$filter" --gtest_brief=1
echo "qkv tsan: clean ($filter)" >&2
