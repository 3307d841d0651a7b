#!/usr/bin/env bash
# Run every cargo-fuzz target for a while and print executions and findings per target.
#
#   scripts/fuzz.sh            # 120 s per target
#   FUZZ_SECONDS=600 scripts/fuzz.sh auth_header chunked
#
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`); not part of the test command. Crashes land in
# fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/<target>/ (both git-ignored).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${FUZZ_SECONDS:-120}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(cargo +nightly fuzz list)
mkdir -p ../target/fuzz-logs
for t in "${TARGETS[@]}"; do
  log=../target/fuzz-logs/$t.log
  before=$(find "artifacts/$t" -type f 2>/dev/null | wc -l || true)
  status=ok
  cargo +nightly fuzz run "$t" -- -max_total_time="$SECONDS_EACH" -print_final_stats=1 >"$log" 2>&1 || status=FAILED
  after=$(find "artifacts/$t" -type f 2>/dev/null | wc -l || true)
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  echo "$t: ${SECONDS_EACH}s, $runs executions, $cov, new artifacts: $((after - before)), run $status (log $log)"
done
