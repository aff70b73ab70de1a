#!/usr/bin/env bash
# Re-records every lab scenario from scratch: the lab servers (modtrace lab serve), tcpdump on
# loopback, and the real go command with a fresh HOME/GOPATH/GOMODCACHE/GOCACHE and every
# relevant variable set explicitly.
#
# Usage: sudo captures/record.sh [OUTDIR]       (default OUTDIR: the captures/ folder)
#        SCENARIOS="fallback-410 redirect-loop" sudo captures/record.sh /tmp/out
#
# Writes per scenario NAME: NAME.pcap, NAME.lab.jsonl (server request log), NAME.go.json (go's
# stdout), NAME.go.stderr, NAME.go.exit. Fails (non-zero) when root, go, tcpdump or cargo is
# missing, a lab port (8081-8099 on 127.0.0.1) is taken, tcpdump captured nothing, the go
# command's result differs from the scenario's expectation, or a request in the server log is
# not in the capture after 3 attempts. Servers and tcpdump are stopped on any exit (trap).
# Scenario definitions live in one place, src/lab/scenario.rs, read here via `modtrace lab env`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
OUT=${1:-$HERE}
ATTEMPTS=3

die() {
  echo "record.sh: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "needs root: tcpdump must capture on lo (run: sudo captures/record.sh)"
GO=$(command -v go) || die "needs the go command on PATH (https://go.dev/dl, or apt-get install golang-go)"
TCPDUMP=$(command -v tcpdump) || die "needs tcpdump on PATH (apt-get install tcpdump)"
command -v cargo >/dev/null || die "needs cargo on PATH to build modtrace (under sudo: sudo env PATH=\"\$PATH\" captures/record.sh)"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

echo "== building modtrace (cargo build --release)"
(cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/modtrace
[ -x "$BIN" ] || die "no binary at $BIN"

WORK=$(mktemp -d /tmp/modtrace-record.XXXXXX)
SERVE_PID=""
TCPDUMP_PID=""

stop_pid() { # stop_pid PID SIGNAL: signal one process we started and reap it
  local pid=$1 sig=$2
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  stop_pid "$TCPDUMP_PID" INT
  stop_pid "$SERVE_PID" TERM
  TCPDUMP_PID=""
  SERVE_PID=""
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # wait_for FILE PATTERN SECONDS PID: until FILE has PATTERN, PID alive
  local file=$1 pattern=$2 secs=$3 pid=$4
  for _ in $(seq $((secs * 10))); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Targets of the GETs on the wire, sorted: tcpdump prints payloads with -A; request lines are
# small and sit in one segment each.
wire_targets() {
  "$TCPDUMP" -r "$1" -nn -A 2>/dev/null | grep -a -o 'GET /[^ ]* HTTP/1\.1' | sed -e 's/^GET //' -e 's/ HTTP\/1\.1$//' | sort || true
}

log_targets() {
  sed -n 's/.*"target":"\([^"]*\)".*/\1/p' "$1" | sort
}

# Status codes of the responses on the wire, and in the server log, sorted.
wire_statuses() {
  "$TCPDUMP" -r "$1" -nn -A 2>/dev/null | grep -a -o 'HTTP/1\.1 [0-9][0-9][0-9] ' | sed -e 's/^HTTP\/1\.1 //' -e 's/ $//' | sort || true
}

log_statuses() {
  sed -n 's/.*"status":\([0-9]*\).*/\1/p' "$1" | sort
}

# record_once NAME DIR: one attempt; returns 0 when the recording is complete and checked,
# 2 when packets were lost (retry), exits on anything else.
record_once() {
  local name=$1 d=$2
  rm -rf "$d"
  mkdir -p "$d/home" "$d/gopath" "$d/cache" "$d/work"

  local p
  for p in $PORTS; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "$name: port $p on 127.0.0.1 is taken; stop what listens there (ss -ltnp 'sport = :$p')"
    fi
  done

  "$BIN" lab serve --scenario "$name" --log "$d/lab.jsonl" --timeout 900 >"$d/serve.out" 2>"$d/serve.err" </dev/null &
  SERVE_PID=$!
  if ! wait_for "$d/serve.out" '^GOPROXY=' 10 "$SERVE_PID"; then
    cat "$d/serve.err" >&2
    die "$name: lab servers did not start"
  fi
  local served
  served=$(sed -n 's/^GOPROXY=//p' "$d/serve.out")
  [ "$served" = "$GOPROXY" ] || die "$name: lab serves GOPROXY=$served, scenario says $GOPROXY"

  local filter="tcp and host 127.0.0.1 and ("
  local first=1
  for p in $PORTS; do
    [ $first = 1 ] || filter+=" or "
    filter+="port $p"
    first=0
  done
  filter+=")"
  : >"$d/capture.pcap"
  "$TCPDUMP" -i "$INTERFACE" -s 0 -U --immediate-mode -B 65536 -w "$d/capture.pcap" "$filter" 2>"$d/tcpdump.err" &
  TCPDUMP_PID=$!
  if ! wait_for "$d/tcpdump.err" 'listening on' 10 "$TCPDUMP_PID"; then
    cat "$d/tcpdump.err" >&2
    die "$name: tcpdump did not start"
  fi
  sleep 1

  local go_exit=0
  (
    cd "$d/work"
    exec env -i \
      PATH="$(dirname "$GO"):/usr/local/bin:/usr/bin:/bin" \
      HOME="$d/home" GOPATH="$d/gopath" GOMODCACHE="$d/gopath/pkg/mod" GOCACHE="$d/cache" \
      GOENV=off GOPROXY="$GOPROXY" GOSUMDB="$GOSUMDB" GONOSUMDB= GOPRIVATE= GONOPROXY= GOINSECURE= \
      GOFLAGS=-modcacherw GOTOOLCHAIN=local \
      timeout 120 "$GO" mod download -json $DOWNLOADS
  ) >"$d/go.json" 2>"$d/go.stderr" || go_exit=$?
  echo "$go_exit" >"$d/go.exit"

  sleep 1
  stop_pid "$TCPDUMP_PID" INT
  TCPDUMP_PID=""
  stop_pid "$SERVE_PID" TERM
  SERVE_PID=""

  local packets dropped
  packets=$(sed -n 's/^\([0-9][0-9]*\) packets\{0,1\} captured.*/\1/p' "$d/tcpdump.err")
  dropped=$(sed -n 's/^\([0-9][0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$d/tcpdump.err")
  [ -n "$packets" ] || { cat "$d/tcpdump.err" >&2; die "$name: cannot read tcpdump's packet count"; }
  [ "$packets" -gt 0 ] || die "$name: tcpdump captured 0 packets"

  # The go command's result must be the scenario's.
  if [ -z "$EXPECT_ERROR" ]; then
    if [ "$go_exit" != 0 ] || grep -q '"Error"' "$d/go.json"; then
      cat "$d/go.json" "$d/go.stderr" >&2
      die "$name: go mod download failed (exit $go_exit), the scenario expects success"
    fi
  else
    if [ "$go_exit" = 0 ] || ! cat "$d/go.json" "$d/go.stderr" | grep -qF -- "$EXPECT_ERROR"; then
      cat "$d/go.json" "$d/go.stderr" >&2
      die "$name: expected go to fail with \"$EXPECT_ERROR\" (exit $go_exit)"
    fi
  fi

  # Every request the servers answered must be in the capture.
  local logged wire
  logged=$(log_targets "$d/lab.jsonl")
  wire=$(wire_targets "$d/capture.pcap")
  [ -n "$logged" ] || die "$name: the lab servers logged no request"
  if [ "$logged" != "$wire" ]; then
    echo "record.sh: $name: server log and capture differ (packets lost?):" >&2
    diff <(echo "$logged") <(echo "$wire") >&2 || true
    return 2
  fi
  logged=$(log_statuses "$d/lab.jsonl")
  wire=$(wire_statuses "$d/capture.pcap")
  if [ "$logged" != "$wire" ]; then
    echo "record.sh: $name: response statuses in the server log and the capture differ (packets lost?):" >&2
    diff <(echo "$logged") <(echo "$wire") >&2 || true
    return 2
  fi
  echo "$packets" >"$d/packets"
  echo "${dropped:-0}" >"$d/dropped"
  return 0
}

if [ -n "${SCENARIOS:-}" ]; then
  names=$SCENARIOS
else
  names=$("$BIN" lab scenarios | awk '{print $1}')
fi
[ -n "$names" ] || die "no scenarios"

echo "== go: $("$GO" version)"
echo "== tcpdump: $("$TCPDUMP" --version 2>&1 | head -1)"
echo "== output: $OUT"
for name in $names; do
  env_text=$("$BIN" lab env "$name") || die "unknown scenario $name"
  eval "$env_text"
  ok=""
  for attempt in $(seq "$ATTEMPTS"); do
    d="$WORK/$name.$attempt"
    rc=0
    record_once "$name" "$d" || rc=$?
    if [ "$rc" = 0 ]; then
      ok=$d
      break
    fi
    echo "record.sh: $name: attempt $attempt incomplete, re-recording" >&2
  done
  [ -n "$ok" ] || die "$name: requests missing from the capture after $ATTEMPTS attempts"
  rm -f "$OUT/$name.pcap" "$OUT/$name.pcapng" "$OUT/$name.lab.jsonl" "$OUT/$name.go.json" "$OUT/$name.go.stderr" "$OUT/$name.go.exit"
  cp "$ok/capture.pcap" "$OUT/$name.pcap"
  cp "$ok/lab.jsonl" "$OUT/$name.lab.jsonl"
  cp "$ok/go.json" "$OUT/$name.go.json"
  cp "$ok/go.stderr" "$OUT/$name.go.stderr"
  cp "$ok/go.exit" "$OUT/$name.go.exit"
  printf '%-18s %-4s packets=%-4s dropped=%s requests=%-3s go exit=%s  GOPROXY=%s\n' \
    "$name" "$INTERFACE" "$(cat "$ok/packets")" "$(cat "$ok/dropped")" "$(wc -l <"$ok/lab.jsonl")" "$(cat "$ok/go.exit")" "$GOPROXY"
  rm -rf "$WORK/$name".*
done
echo "== done"
