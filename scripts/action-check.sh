#!/usr/bin/env bash
# Runs the GitHub action's steps (scripts/action.sh) as the action would, on two bundled lab
# captures: on plaintext-proxy.pcap it must exit 1 with the report's SARIF results naming
# plaintext-module-fetch, on tls13-verified.pcap exit 0 with no result at level error. Also
# checks the outputs it leaves in GITHUB_OUTPUT. .ci/run calls it; CARGO_TARGET_DIR=target
# makes its `cargo install` reuse the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export RUNNER_TEMP=$WORK GITHUB_OUTPUT=$WORK/github-output
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

run_action() { # CAPTURE OUTPUT -> exit status
  local code=0
  : > "$GITHUB_OUTPUT"
  INPUT_CAPTURE=$1 INPUT_OUTPUT=$2 INPUT_GO_MOD= INPUT_POLICY= scripts/action.sh || code=$?
  grep -qx "report=$2" "$GITHUB_OUTPUT" || { echo "action-check: no report output"; exit 1; }
  grep -qx "exit-code=$code" "$GITHUB_OUTPUT" || { echo "action-check: no exit-code output"; exit 1; }
  return "$code"
}

code=0; run_action captures/plaintext-proxy.pcap "$WORK/plain.sarif" || code=$?
[ "$code" = 1 ] || { echo "action-check: plaintext capture exited $code, want 1"; exit 1; }
code=0; run_action captures/tls13-verified.pcap "$WORK/clean.sarif" || code=$?
[ "$code" = 0 ] || { echo "action-check: clean capture exited $code, want 0"; exit 1; }

python3 - "$WORK/plain.sarif" "$WORK/clean.sarif" <<'PY'
import json, sys
plain = json.load(open(sys.argv[1]))["runs"][0]["results"]
clean = json.load(open(sys.argv[2]))["runs"][0]["results"]
rules = {r["ruleId"] for r in plain}
assert "plaintext-module-fetch" in rules, rules
assert any(r["level"] == "error" for r in plain), plain
assert not any(r["level"] == "error" for r in clean), clean
print(f"action-check: plaintext capture: exit 1, {len(plain)} SARIF results ({', '.join(sorted(rules))}); clean capture: exit 0, {len(clean)} results, none at level error")
PY
