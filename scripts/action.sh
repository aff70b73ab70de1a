#!/usr/bin/env bash
# The steps of the GitHub action (action.yml): install modtrace from the action's own checkout,
# analyse the capture, write the report, and exit with modtrace's status (after writing it to
# GITHUB_OUTPUT, so a later upload-sarif step with `if: always()` still finds the report).
#
# Inputs come as INPUT_CAPTURE (required), INPUT_FORMAT (sarif), INPUT_FAIL_ON (high),
# INPUT_GO_MOD, INPUT_POLICY and INPUT_OUTPUT (modtrace.sarif). Outside GitHub (.ci/run), the
# checkout is this script's parent folder, and CARGO_TARGET_DIR may point at a warm build.
set -euo pipefail

ACTION_PATH=${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/.." && pwd)}
CAPTURE=${INPUT_CAPTURE:?the action needs a capture}
FORMAT=${INPUT_FORMAT:-sarif}
FAIL_ON=${INPUT_FAIL_ON:-high}
OUTPUT=${INPUT_OUTPUT:-modtrace.sarif}
ROOT=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/modtrace-action

echo "::group::cargo install modtrace from $ACTION_PATH"
cargo install --quiet --locked --path "$ACTION_PATH" --root "$ROOT" --force
echo "::endgroup::"
"$ROOT/bin/modtrace" --version

# Several captures may be given, separated by spaces (a file name with spaces: one capture).
read -r -a FILES <<< "$CAPTURE"
[ -e "$CAPTURE" ] && FILES=("$CAPTURE")
ARGS=(analyze "${FILES[@]}" --format "$FORMAT" --fail-on "$FAIL_ON" --no-progress -o "$OUTPUT")
[ -n "${INPUT_GO_MOD:-}" ] && ARGS+=(--go-mod "$INPUT_GO_MOD")
[ -n "${INPUT_POLICY:-}" ] && ARGS+=(--policy "$INPUT_POLICY")

code=0
"$ROOT/bin/modtrace" "${ARGS[@]}" || code=$?
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  { echo "report=$OUTPUT"; echo "exit-code=$code"; } >> "$GITHUB_OUTPUT"
fi
case $code in
  0) echo "modtrace: nothing at or above $FAIL_ON; report in $OUTPUT" ;;
  1) echo "::error::modtrace: findings at or above $FAIL_ON; report in $OUTPUT" ;;
  *) echo "::error::modtrace failed (exit $code)" ;;
esac
exit "$code"
