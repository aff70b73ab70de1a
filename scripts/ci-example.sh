#!/usr/bin/env bash
# Runs the CI recipe of docs/ci.md for real, against the lab instead of a private mirror:
#   1. builds modtrace (cargo build --release);
#   2. starts `modtrace lab serve --scenario plaintext-proxy` (a plain-HTTP GOPROXY on
#      127.0.0.1:8081) and tcpdump on lo around `go mod download` in a small Go module
#      that requires example.test/Hello (which requires example.test/Util);
#   3. `modtrace analyze build.pcap --format sarif --fail-on high --go-mod .` must exit 1,
#      write SARIF with plaintext-module-fetch results, one of them at go.mod's require line;
#   4. a capture without high findings (captures/tls13-verified.pcap) and the same build.pcap
#      with --fail-on never must exit 0; a missing capture file must exit 2.
# Needs root (tcpdump), go, tcpdump and cargo. Without them it fails with CI=true and skips
# (exit 0, saying why) otherwise. Every go variable that matters is set explicitly, with a
# fresh GOMODCACHE, as in captures/record.sh; only 127.0.0.1 is contacted.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=8081

say() { echo "ci-example.sh: $*"; }
fail() {
  echo "ci-example.sh: FAIL: $*" >&2
  exit 1
}
missing() { # a prerequisite is missing: fatal in CI, a skip on a laptop
  if [ "${CI:-}" = true ]; then
    fail "needs $* (CI=true)"
  fi
  say "skipped: needs $*"
  exit 0
}

[ "$(id -u)" = 0 ] || missing "root (tcpdump captures on lo): sudo env PATH=\"\$PATH\" scripts/ci-example.sh"
GO=$(command -v go) || missing "the go command on PATH"
TCPDUMP=$(command -v tcpdump) || missing "tcpdump on PATH (apt-get install tcpdump)"
command -v cargo >/dev/null || missing "cargo on PATH"

say "building modtrace (cargo build --release)"
(cd "$REPO" && cargo build --release --quiet) || fail "cargo build --release"
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/modtrace
[ -x "$BIN" ] || fail "no binary at $BIN"

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  fail "port $PORT on 127.0.0.1 is taken (ss -ltnp 'sport = :$PORT')"
fi

WORK=$(mktemp -d /tmp/modtrace-ci-example.XXXXXX)
SERVE_PID=""
TCPDUMP_PID=""
# shellcheck source=lib.sh
. "$REPO/scripts/lib.sh"
cleanup() {
  stop_pid "$TCPDUMP_PID" INT
  stop_pid "$SERVE_PID" TERM
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # wait_for FILE PATTERN SECONDS PID
  local file=$1 pattern=$2 secs=$3 pid=$4
  for _ in $(seq $((secs * 10))); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# The project a CI job would check out: a module requiring a lab module.
APP=$WORK/app
mkdir -p "$APP" "$WORK/home" "$WORK/gopath" "$WORK/cache"
cat >"$APP/go.mod" <<'EOF'
module example.test/ci

go 1.22

require example.test/Hello v1.1.0

require example.test/Util v0.2.0 // indirect
EOF

say "starting the lab (plaintext-proxy) and tcpdump on lo"
"$BIN" lab serve --scenario plaintext-proxy --log "$WORK/lab.jsonl" --timeout 300 \
  >"$WORK/serve.out" 2>"$WORK/serve.err" </dev/null &
SERVE_PID=$!
wait_for "$WORK/serve.out" '^GOPROXY=' 10 "$SERVE_PID" || { cat "$WORK/serve.err" >&2; fail "lab did not start"; }
GOPROXY_URL=$(sed -n 's/^GOPROXY=//p' "$WORK/serve.out")
[ "$GOPROXY_URL" = "http://127.0.0.1:$PORT" ] || fail "lab serves GOPROXY=$GOPROXY_URL"

"$TCPDUMP" -i lo -s 0 -U --immediate-mode -w "$APP/build.pcap" "tcp and host 127.0.0.1 and port $PORT" \
  2>"$WORK/tcpdump.err" &
TCPDUMP_PID=$!
wait_for "$WORK/tcpdump.err" 'listening on' 10 "$TCPDUMP_PID" || { cat "$WORK/tcpdump.err" >&2; fail "tcpdump did not start"; }
sleep 1

say "go mod download (GOPROXY=$GOPROXY_URL, GOSUMDB=off, fresh GOMODCACHE)"
go_exit=0
(
  cd "$APP"
  exec env -i PATH="$(dirname "$GO"):/usr/local/bin:/usr/bin:/bin" \
    HOME="$WORK/home" GOPATH="$WORK/gopath" GOMODCACHE="$WORK/gopath/pkg/mod" GOCACHE="$WORK/cache" \
    GOENV=off GOPROXY="$GOPROXY_URL" GOSUMDB=off GONOSUMDB= GOPRIVATE= GONOPROXY= GOINSECURE= \
    GOFLAGS=-modcacherw GOTOOLCHAIN=local HTTP_PROXY= HTTPS_PROXY= NO_PROXY= \
    timeout 120 "$GO" mod download
) >"$WORK/go.out" 2>&1 || go_exit=$?
sleep 1
stop_pid "$TCPDUMP_PID" INT
TCPDUMP_PID=""
stop_pid "$SERVE_PID" TERM
SERVE_PID=""
[ "$go_exit" = 0 ] || { cat "$WORK/go.out" >&2; fail "go mod download exit $go_exit"; }
[ -s "$APP/build.pcap" ] || fail "tcpdump wrote nothing"

# The CI step itself, run from the module's root as a job does.
analyze() { # analyze ARGS...: runs modtrace analyze in $APP, sets RC
  RC=0
  (cd "$APP" && "$BIN" analyze "$@") || RC=$?
}

say "modtrace analyze build.pcap --format sarif --fail-on high --go-mod . -o modtrace.sarif"
analyze build.pcap --format sarif --fail-on high --go-mod . -o modtrace.sarif
[ "$RC" = 1 ] || fail "expected exit 1 (high findings), got $RC"
SARIF=$APP/modtrace.sarif
n=$(grep -c '"ruleId": "plaintext-module-fetch"' "$SARIF" || true)
[ "$n" -ge 2 ] || fail "expected plaintext-module-fetch results for Hello and Util, found $n"
grep -q '"uri": "go.mod"' "$SARIF" || fail "no result points at go.mod"
grep -q '"uri": "build.pcap"' "$SARIF" || fail "no result points at the capture"
if command -v jq >/dev/null; then
  # Hello's result sits on go.mod's require line (line 5 of the go.mod above).
  line=$(jq -r '[.runs[0].results[] | select(.ruleId == "plaintext-module-fetch")
      | .locations[0] | select(.physicalLocation.artifactLocation.uri == "go.mod"
      and .logicalLocations[0].fullyQualifiedName == "example.test/Hello@v1.1.0")
      | .physicalLocation.region.startLine] | first' "$SARIF")
  [ "$line" = 5 ] || fail "Hello's result at go.mod line $line, expected 5"
fi
say "ok: exit 1 and $n plaintext-module-fetch results"

say "the same capture with --fail-on never"
analyze build.pcap --format sarif --fail-on never -o never.sarif
[ "$RC" = 0 ] || fail "--fail-on never: expected exit 0, got $RC"

say "a clean capture (captures/tls13-verified.pcap: one info finding)"
analyze "$REPO/captures/tls13-verified.pcap" --format sarif --fail-on high -o clean.sarif
[ "$RC" = 0 ] || fail "clean capture: expected exit 0, got $RC"

say "a missing capture file"
analyze no-such.pcap --format sarif --fail-on high -o missing.sarif 2>"$WORK/missing.err"
[ "$RC" = 2 ] || fail "missing file: expected exit 2, got $RC"
grep -q 'no-such.pcap' "$WORK/missing.err" || fail "the error does not name the file"

say "all steps passed"
