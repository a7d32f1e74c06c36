#!/usr/bin/env bash
# Fuzzes the parsers of untrusted files with libFuzzer (clang): .npy, .safetensors, explain specs
# (JSON) and `qkv train` checkpoints. Builds the targets with AddressSanitizer,
# UndefinedBehaviorSanitizer and libFuzzer's coverage instrumentation in build-fuzz/ (or
# $QKV_FUZZ_BUILD_DIR), then runs each for QKV_FUZZ_SECONDS seconds (default 20) from its seed
# corpus in fuzz/corpus/<target>/ and the past findings in fuzz/regressions/<target>/. A crash, a
# sanitizer report, a timeout (a hang) or an allocation beyond the limit stops the run and fails
# the script; the input is saved in build-fuzz/findings/<target>/ and belongs in
# fuzz/regressions/<target>/ once fixed.
# Usage: scripts/fuzz.sh [target...]   (default: npy safetensors explain_spec checkpoint)
# The first three link only the parsers and build in seconds (CI runs them: 60 s of fuzzing);
# checkpoint builds the whole library with the sanitizers, several minutes on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${QKV_FUZZ_BUILD_DIR:-build-fuzz}
seconds=${QKV_FUZZ_SECONDS:-20}
targets=("$@")
((${#targets[@]})) || targets=(npy safetensors explain_spec checkpoint)

bash scripts/setup.sh >/dev/null  # the Debian packages (clang, libFuzzer) and the main build
CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DQKV_SANITIZE=address,undefined,fuzzer-no-link -DQKV_BUILD_FUZZERS=ON -DQKV_BUILD_TESTS=OFF \
  -DQKV_BUILD_TOOLS=OFF -DQKV_BUILD_BENCH=OFF -DQKV_BUILD_EXAMPLES=OFF -DQKV_WITH_MPI=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

status=0
for t in "${targets[@]}"; do
  work="$build/corpus/$t" findings="$build/findings/$t"
  mkdir -p "$work" "$findings"
  mkdir -p "fuzz/regressions/$t"
  # New inputs go to the scratch corpus in the build folder; the repository's seeds stay as they are.
  # -rss_limit_mb bounds memory (an input that makes the parser allocate far beyond its own size
  # is a finding: sizes come from the file); -timeout flags an input that takes over 10 s.
  echo "qkv fuzz: $t for ${seconds}s" >&2
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
      "$build/fuzz/fuzz_$t" "$work" "fuzz/corpus/$t" "fuzz/regressions/$t" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$findings/" \
      >"$build/fuzz-$t.log" 2>&1; then
    echo "qkv fuzz: $t FOUND A PROBLEM; see $build/fuzz-$t.log and $findings/" >&2
    tail -40 "$build/fuzz-$t.log" >&2
    status=1
  else
    grep -E "^stat::number_of_executed_runs|^stat::peak_rss_mb|cov:" "$build/fuzz-$t.log" | tail -3 >&2
  fi
done
exit $status
