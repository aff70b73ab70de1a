#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time on its committed seeds:
#
#   fuzz/run.sh [SECONDS_PER_TARGET]        (default 10; CI runs it from .ci/run)
#
# Builds all targets once (`cargo fuzz build`), then runs them, as many at a time as there are
# CPUs, each on fuzz/seeds/<target> plus a scratch corpus (the committed seeds are never
# written). Any crash, panic, hang over 1 s or memory use over 256 MB fails the run; libFuzzer
# leaves the reproducer in fuzz/artifacts/<target>/ and its log is printed.
#
# Toolchain: nightly when installed (`cargo +nightly`), else stable with RUSTC_BOOTSTRAP=1
# (cargo-fuzz passes unstable rustc flags). FUZZ_TOOLCHAIN=+name picks another one.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-10}"

if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  cargo=(cargo "$FUZZ_TOOLCHAIN")
elif cargo +nightly --version >/dev/null 2>&1; then
  cargo=(cargo +nightly)
else
  echo "fuzz: no nightly toolchain: stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  cargo=(cargo)
fi
# No sanitizer (modtrace's parsers have no unsafe code; ASan would only slow them down and
# inflate RSS past the 256 MB limit); debug assertions and overflow checks on.
flags=(-s none -a)
# The limits every finding of the campaign was held to (docs/fuzzing.md).
libfuzzer=(-max_total_time="$secs" -rss_limit_mb=256 -timeout=1 -max_len=65536 -print_final_stats=1)

"${cargo[@]}" fuzz build "${flags[@]}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
run_one() {
  local t=$1 scratch
  scratch=$(mktemp -d)
  mkdir -p "seeds/$t"
  if "${cargo[@]}" fuzz run "${flags[@]}" "$t" "$scratch" "seeds/$t" -- "${libfuzzer[@]}" \
    >"$logs/$t.log" 2>&1; then
    local runs cov
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log")
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$logs/$t.log" | tail -1)
    printf 'fuzz: %-16s ok   %10s runs  %s\n' "$t" "$runs" "$cov"
  else
    printf 'fuzz: %-16s FAILED (reproducer in fuzz/artifacts/%s/)\n' "$t" "$t"
    tail -n 60 "$logs/$t.log"
    touch "$logs/$t.failed"
  fi
  rm -rf "$scratch"
}
# Bash cannot export arrays: each job gets them, and run_one, as declarations.
targets=$("${cargo[@]}" fuzz list)
jobs=$(nproc 2>/dev/null || echo 2)
printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c "$(declare -p cargo flags libfuzzer); $(declare -f run_one); logs='$logs'; run_one {}"

if ls "$logs"/*.failed >/dev/null 2>&1; then
  echo "fuzz: failed: $(cd "$logs" && ls *.failed | sed 's/\.failed$//' | tr '\n' ' ')"
  exit 1
fi
echo "fuzz: all $(printf '%s\n' $targets | wc -l) targets ran ${secs}s each without a finding"
