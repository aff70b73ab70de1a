#!/usr/bin/env bash
# Re-records every lab scenario from scratch: the lab servers (modtrace lab serve), tcpdump on
# loopback, and the real go command with a fresh HOME/GOPATH/GOMODCACHE/GOCACHE and every
# relevant variable set explicitly.
#
# Usage: sudo captures/record.sh [OUTDIR]       (default OUTDIR: the captures/ folder)
#        SCENARIOS="fallback-410 redirect-loop" sudo captures/record.sh /tmp/out
#        SCENARIOS="h2-proxy-tls13 connect-proxy-h2" sudo env PATH="$PATH" captures/record.sh
#        captures/record.sh --verify [OUTDIR]   (no recording, no root: re-runs the wire check
#                                                of step 7 on the captures already in OUTDIR)
#
# Writes per scenario NAME: NAME.pcap, NAME.lab.jsonl (server request log), NAME.go.json (go's
# stdout), NAME.go.stderr, NAME.go.exit, NAME.go-env.json (`go env -json` in the same
# environment); for TLS scenarios also NAME.keys (NSS key log of the lab's TLS servers and of
# the mirror's TLS client) and NAME.tls.log (one line per TLS handshake or failed handshake, as
# the lab servers saw it). The lab PKI the TLS servers use lives in OUTDIR/lab-pki/ (created on
# first use, reused after, so every TLS capture chains to the same lab-ca.pem).
# Scenarios with EMBED_KEYS (connect-proxy-h2) keep NAME.pcapng instead of NAME.pcap: after the
# recording passed its check, `modtrace lab embed-keys NAME.pcap NAME.keys NAME.pcapng` copies
# the packets into a pcapng with the key log as a Decryption Secrets Block ahead of them, and
# the check is run again on the pcapng with no key file (tshark must decrypt from the DSB
# alone); NAME.keys stays beside it for reference.
# The go command gets HTTP_PROXY, HTTPS_PROXY and NO_PROXY explicitly (empty but for a scenario
# with a CONNECT proxy, whose HTTPS_PROXY is http://127.0.0.1:PORT).
# Scenarios whose GOSUMDB names the lab checksum database also leave OUTDIR/lab-sumdb.vkey (its
# verifier key, `modtrace lab sumdb-key`: give it to `modtrace analyze --sumdb-key`); scenarios
# with a tampering server leave NAME.true.go.sum (the go.sum lines of what the honest lab proxy
# serves for DOWNLOADS, `modtrace lab go-sum`: for `modtrace analyze --go-sum`).
# Fails (non-zero) when root, go, tcpdump, ip or cargo is missing (tshark too, for TLS
# scenarios), a lab port (8081-8127 on 127.0.0.1) is taken, tcpdump captured nothing, the go
# command's result differs from the scenario's expectation, or a request in the server log is
# not in the capture (decrypted with the key log, for TLS) after 3 attempts.
# A scenario's closed ports (CLOSED_PORTS: GOPROXY entries nothing listens on, pipe-after-refused)
# must be free like the others; the lab starts nothing there, and the capture must show the go
# command's connections to them refused (SYN answered by RST, never a SYN-ACK or a byte of data). Servers, tcpdump
# and the network namespace of direct-mode scenarios are stopped/removed on any exit (trap).
# Scenario definitions live in one place, crates/lab/src/scenario.rs, read here via `modtrace lab env`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
VERIFY_ONLY=""
if [ "${1:-}" = --verify ]; then
  VERIFY_ONLY=1
  shift
fi
OUT=${1:-$HERE}
ATTEMPTS=3

die() {
  echo "record.sh: $*" >&2
  exit 1
}

TCPDUMP=$(command -v tcpdump) || die "needs tcpdump on PATH (apt-get install tcpdump)"
TSHARK=$(command -v tshark || true)
if [ -z "$VERIFY_ONLY" ]; then
  [ "$(id -u)" = 0 ] || die "needs root: tcpdump must capture on lo (run: sudo captures/record.sh)"
  GO=$(command -v go) || die "needs the go command on PATH (https://go.dev/dl, or apt-get install golang-go)"
  IP=$(command -v ip) || die "needs ip (iproute2) on PATH for the network namespace of direct-mode scenarios (apt-get install iproute2)"
fi
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
NETNS=""
NETNS_ETC_CREATED=""
PKI="$OUT/lab-pki"

# shellcheck source=../scripts/lib.sh
. "$REPO/scripts/lib.sh"

netns_remove() {
  [ -n "$NETNS" ] || return 0
  "$IP" netns del "$NETNS" 2>/dev/null || true
  rm -rf "/etc/netns/$NETNS"
  if [ -n "$NETNS_ETC_CREATED" ]; then rmdir /etc/netns 2>/dev/null || true; fi
  NETNS=""
}

cleanup() {
  stop_pid "$TCPDUMP_PID" INT
  stop_pid "$SERVE_PID" TERM
  TCPDUMP_PID=""
  SERVE_PID=""
  netns_remove
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

# TLS scenarios: what tshark sees inside the TLS sessions once decrypted with the key log (or,
# KEYS empty, with the secrets the capture itself holds in a pcapng Decryption Secrets Block).
# Plain ports are decoded as HTTP, TLS ports as TLS (HTTP/1.1 or HTTP/2 inside by ALPN); on a
# CONNECT proxy's port tshark follows the tunnel and decodes the TLS inside it too.
tshark_args() { # tshark_args KEYS: sets the array TSHARK_ARGS
  TSHARK_ARGS=()
  [ -z "$1" ] || TSHARK_ARGS+=(-o "tls.keylog_file:$1")
  local p
  for p in $PORTS; do
    if [[ " $TLS_PORTS " == *" $p "* ]]; then TSHARK_ARGS+=(-d "tcp.port==$p,tls"); else TSHARK_ARGS+=(-d "tcp.port==$p,http"); fi
  done
}

tshark_fields() { # tshark_fields CAPTURE KEYS FILTER FIELD
  tshark_args "$2"
  "$TSHARK" -r "$1" "${TSHARK_ARGS[@]}" -Y "$3" -T fields -e "$4" 2>/dev/null | sort || true
}

# tls_exchanges CAPTURE KEYS: one line per HTTP/1.x or HTTP/2 request and response on the wire,
#   req  direct|tunnel DSTPORT METHOD TARGET     (HTTP/2: :method and :path)
#   resp direct|tunnel SRCPORT STATUS
# "tunnel": inside TLS on a CONNECT proxy's port (CONNECT_PORTS), i.e. the client's leg of a
# tunnel, which the proxy relays without logging; the same requests reach the lab server on the
# proxy's upstream leg, "direct". Several requests in one frame come space-separated (a request
# target holds no space) and are split here.
tls_exchanges() {
  tshark_args "$2"
  "$TSHARK" -r "$1" "${TSHARK_ARGS[@]}" \
    -Y 'http.request || http.response || http2.headers.path || http2.headers.status' \
    -T fields -E separator=/t -E aggregator=/s -e tcp.srcport -e tcp.dstport -e frame.protocols \
    -e http.request.method -e http.request.uri -e http.response.code \
    -e http2.headers.method -e http2.headers.path -e http2.headers.status 2>/dev/null |
    awk -F'\t' -v connect=" $CONNECT_PORTS " '
      {
        on_proxy = index(connect, " " $1 " ") || index(connect, " " $2 " ")
        where = (on_proxy && $3 ~ /(^|:)tls(:|$)/) ? "tunnel" : "direct"
        n = split($4, m, " "); split($5, u, " ")
        for (i = 1; i <= n; i++) print "req", where, $2, m[i], u[i]
        n = split($7, m, " "); split($8, u, " ")
        for (i = 1; i <= n; i++) print "req", where, $2, m[i], u[i]
        n = split($6, c, " ")
        for (i = 1; i <= n; i++) print "resp", where, $1, c[i]
        n = split($9, c, " ")
        for (i = 1; i <= n; i++) print "resp", where, $1, c[i]
      }' || true
}

# The server log as "PORT METHOD TARGET" and "PORT STATUS" lines (listen is 127.0.0.1:PORT).
log_requests() {
  sed -n 's/.*"listen":"[^"]*:\([0-9]*\)","method":"\([^"]*\)","target":"\([^"]*\)".*/\1 \2 \3/p' "$1"
}

log_port_statuses() {
  sed -n 's/.*"listen":"[^"]*:\([0-9]*\)".*"status":\([0-9]*\).*/\1 \2/p' "$1"
}

# Ports the lab's CONNECT proxies opened tunnels to (logged CONNECT host:PORT answered 200).
log_tunnel_ports() {
  sed -n 's/.*"method":"CONNECT","target":"[^"]*:\([0-9]*\)","status":200,.*/\1/p' "$1" | sort -u
}

# check_closed NAME CAPTURE: every closed port (CLOSED_PORTS) refused at least one connection
# (a RST from it) and accepted none (every packet from it is a RST: no SYN-ACK, no data).
# Returns 0, 2 when no refusal is in the capture (lost packets?), 1 when something answered.
check_closed() {
  local name=$1 cap=$2 p n
  for p in $CLOSED_PORTS; do
    n=$("$TCPDUMP" -r "$cap" -nn "tcp src port $p and tcp[tcpflags] & tcp-rst == 0" 2>/dev/null | wc -l)
    [ "$n" = 0 ] || { echo "record.sh: $name: port $p is closed in the scenario, yet something answered there ($n packets)" >&2; return 1; }
    n=$("$TCPDUMP" -r "$cap" -nn "tcp src port $p and tcp[tcpflags] & tcp-rst != 0" 2>/dev/null | wc -l)
    [ "$n" -gt 0 ] || { echo "record.sh: $name: no refused connection (RST from port $p) in the capture" >&2; return 2; }
  done
  return 0
}

same_or_diff() { # same_or_diff NAME WHAT LOGGED WIRE: 0 when equal, else the diff and 2
  if [ "$3" != "$4" ]; then
    echo "record.sh: $1: $2 in the server log and the capture differ (packets lost?):" >&2
    diff <(echo "$3") <(echo "$4") >&2 || true
    return 2
  fi
}

# check_wire NAME CAPTURE KEYS LOG: every request target and response status the lab logged is
# in the capture, and the capture holds no other. TLS scenarios: decrypted with KEYS (or the
# capture's own DSB when KEYS is empty), compared per port and method, and for a CONNECT
# proxy's tunnels also the client's leg against what the servers behind logged. Returns 0, 2
# when they differ (lost packets: worth another attempt), 1 when the capture cannot be right.
check_wire() {
  local name=$1 cap=$2 keys=$3 log=$4
  local logged wire
  check_closed "$name" "$cap" || return $?
  if [ "$USES_TLS" != 1 ]; then
    logged=$(log_targets "$log")
    wire=$(wire_targets "$cap")
    if [ "$EXPECT_REQUESTS" = 0 ]; then
      [ -z "$logged" ] || { echo "record.sh: $name: the lab servers answered requests, the scenario expects none" >&2; return 1; }
      [ -z "$wire" ] || { echo "record.sh: $name: HTTP requests in the capture, the scenario expects none" >&2; return 1; }
      return 0
    fi
    [ -n "$logged" ] || { echo "record.sh: $name: the lab servers logged no request" >&2; return 1; }
    same_or_diff "$name" "requests" "$logged" "$wire" || return $?
    same_or_diff "$name" "response statuses" "$(log_statuses "$log")" "$(wire_statuses "$cap")" || return $?
    return 0
  fi
  local hellos
  hellos=$(tshark_fields "$cap" "$keys" "tls.handshake.type == 1" frame.number | wc -l)
  [ "$hellos" -gt 0 ] || { echo "record.sh: $name: no TLS ClientHello in the capture" >&2; return 1; }
  local ex
  ex=$(tls_exchanges "$cap" "$keys")
  logged=$(log_requests "$log" | sort)
  wire=$(grep '^req direct ' <<<"$ex" | cut -d' ' -f3- | sort || true)
  if [ "$EXPECT_REQUESTS" = 0 ]; then
    [ -z "$logged" ] || { echo "record.sh: $name: the lab servers answered requests, the scenario expects none" >&2; return 1; }
    [ -z "$ex" ] || { echo "record.sh: $name: HTTP requests in the capture, the scenario expects none" >&2; return 1; }
    return 0
  fi
  [ -n "$logged" ] || { echo "record.sh: $name: the lab servers logged no request" >&2; return 1; }
  same_or_diff "$name" "requests (port method target)" "$logged" "$wire" || return $?
  same_or_diff "$name" "response statuses (port status)" "$(log_port_statuses "$log" | sort)" \
    "$(grep '^resp direct ' <<<"$ex" | cut -d' ' -f3- | sort || true)" || return $?
  if [ -n "$CONNECT_PORTS" ]; then
    local tports p behind behind_status
    tports=$(log_tunnel_ports "$log")
    [ -n "$tports" ] || { echo "record.sh: $name: the CONNECT proxy logged no tunnel" >&2; return 1; }
    behind=$(for p in $tports; do log_requests "$log" | awk -v p="$p" '$1 == p { print $2, $3 }'; done | sort)
    behind_status=$(for p in $tports; do log_port_statuses "$log" | awk -v p="$p" '$1 == p { print $2 }'; done | sort)
    same_or_diff "$name" "requests through the tunnel (client's leg vs. the servers behind)" "$behind" \
      "$(grep '^req tunnel ' <<<"$ex" | cut -d' ' -f4- | sort || true)" || return $?
    same_or_diff "$name" "response statuses through the tunnel" "$behind_status" \
      "$(grep '^resp tunnel ' <<<"$ex" | cut -d' ' -f4- | sort || true)" || return $?
  fi
  return 0
}

# netns_create NAME: a network namespace with lo up and a hosts file naming NETNS_HOSTS as
# 127.0.0.1 (ip netns exec bind-mounts /etc/netns/NAME/hosts over /etc/hosts for what it runs).
netns_create() {
  NETNS=$1
  "$IP" netns add "$NETNS" || die "ip netns add $NETNS failed"
  "$IP" netns exec "$NETNS" "$IP" link set lo up || die "cannot bring lo up in $NETNS"
  if [ ! -d /etc/netns ]; then NETNS_ETC_CREATED=1; fi
  mkdir -p "/etc/netns/$NETNS"
  {
    echo "127.0.0.1 localhost"
    echo "::1 localhost"
    local h
    for h in $NETNS_HOSTS; do echo "127.0.0.1 $h"; done
  } >"/etc/netns/$NETNS/hosts"
}

# record_once NAME DIR: one attempt; returns 0 when the recording is complete and checked,
# 2 when packets were lost (retry), exits on anything else.
record_once() {
  local name=$1 d=$2
  rm -rf "$d"
  mkdir -p "$d/home" "$d/gopath" "$d/cache" "$d/work"

  # Direct-mode scenarios run everything in a fresh network namespace (its own loopback and
  # ports, its own hosts file); the others on the machine's loopback.
  local in_ns=()
  if [ -n "$NETNS_HOSTS" ]; then
    netns_create "modtrace-rec-$$"
    in_ns=("$IP" netns exec "$NETNS")
  else
    local p
    for p in $PORTS; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        die "$name: port $p on 127.0.0.1 is taken; stop what listens there (ss -ltnp 'sport = :$p')"
      fi
    done
  fi

  local tls_args=()
  if [ "$USES_TLS" = 1 ]; then
    : >"$d/keys"
    tls_args=(--pki "$PKI" --keylog "$d/keys")
  fi
  "${in_ns[@]}" "$BIN" lab serve --scenario "$name" --log "$d/lab.jsonl" --timeout 900 "${tls_args[@]}" >"$d/serve.out" 2>"$d/serve.err" </dev/null &
  SERVE_PID=$!
  if ! wait_for "$d/serve.out" '^GOPROXY=' 10 "$SERVE_PID"; then
    cat "$d/serve.err" >&2
    die "$name: lab servers did not start"
  fi
  local served
  served=$(sed -n 's/^GOPROXY=//p' "$d/serve.out")
  [ "$served" = "$GOPROXY" ] || die "$name: lab serves GOPROXY=$served, scenario says $GOPROXY"
  if [ "$USES_LAB_SUMDB" = 1 ]; then
    served=$(sed -n 's/^SUMDB_KEY=//p' "$d/serve.out")
    [ "$served" = "$SUMDB_KEY" ] || die "$name: lab checksum database key $served, scenario says $SUMDB_KEY"
  fi

  local filter="tcp and host 127.0.0.1 and ("
  local first=1
  for p in $PORTS; do
    [ $first = 1 ] || filter+=" or "
    filter+="port $p"
    first=0
  done
  filter+=")"
  : >"$d/capture.pcap"
  "${in_ns[@]}" "$TCPDUMP" -i "$INTERFACE" -s 0 -U --immediate-mode -B 65536 -w "$d/capture.pcap" "$filter" 2>"$d/tcpdump.err" &
  TCPDUMP_PID=$!
  if ! wait_for "$d/tcpdump.err" 'listening on' 10 "$TCPDUMP_PID"; then
    cat "$d/tcpdump.err" >&2
    die "$name: tcpdump did not start"
  fi
  sleep 1

  # The go command's environment, all of it: nothing inherited but what is named here.
  local go_env=(
    PATH="$(dirname "$GO"):/usr/local/bin:/usr/bin:/bin"
    HOME="$d/home" GOPATH="$d/gopath" GOMODCACHE="$d/gopath/pkg/mod" GOCACHE="$d/cache"
    GOENV=off GOPROXY="$GOPROXY" GOSUMDB="$GOSUMDB" GONOSUMDB= GOPRIVATE="$GOPRIVATE" GONOPROXY="$GONOPROXY" GOINSECURE="$GOINSECURE"
    GOFLAGS=-modcacherw GOTOOLCHAIN=local
    HTTP_PROXY= HTTPS_PROXY="$HTTPS_PROXY" NO_PROXY=
  )
  if [ "$TRUST_LAB_CA" = 1 ]; then go_env+=(SSL_CERT_FILE="$PKI/lab-ca.pem"); fi
  (cd "$d/work" && exec "${in_ns[@]}" env -i "${go_env[@]}" "$GO" env -json) >"$d/go-env.json" 2>"$d/go-env.err" ||
    { cat "$d/go-env.err" >&2; die "$name: go env -json failed"; }

  local go_exit=0
  (
    cd "$d/work"
    exec "${in_ns[@]}" env -i "${go_env[@]}" timeout 120 "$GO" mod download -json $DOWNLOADS
  ) >"$d/go.json" 2>"$d/go.stderr" || go_exit=$?
  echo "$go_exit" >"$d/go.exit"

  sleep 1
  stop_pid "$TCPDUMP_PID" INT
  TCPDUMP_PID=""
  stop_pid "$SERVE_PID" TERM
  SERVE_PID=""
  netns_remove

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

  grep '^tls ' "$d/serve.err" >"$d/tls.log" || true

  # Every request the servers answered must be in the capture.
  if [ "$USES_TLS" = 1 ] && [ "$EXPECT_REQUESTS" = 1 ] && [ ! -s "$d/keys" ]; then die "$name: the key log is empty"; fi
  local rc=0
  check_wire "$name" "$d/capture.pcap" "$d/keys" "$d/lab.jsonl" || rc=$?
  [ "$rc" != 1 ] || die "$name: the capture does not match the scenario"
  [ "$rc" = 0 ] || return "$rc"
  if [ "$EMBED_KEYS" = 1 ]; then
    "$BIN" lab embed-keys "$d/capture.pcap" "$d/keys" "$d/capture.pcapng" >/dev/null ||
      die "$name: lab embed-keys failed"
    # The pcapng must decrypt from its own Decryption Secrets Block: no key file this time.
    check_wire "$name" "$d/capture.pcapng" "" "$d/lab.jsonl" ||
      die "$name: the pcapng with the embedded key log does not decrypt to the same requests"
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

if [ -n "$VERIFY_ONLY" ]; then
  [ -n "$TSHARK" ] || die "needs tshark on PATH for the TLS scenarios' decrypted wire check (apt-get install tshark)"
  failed=0
  for name in $names; do
    env_text=$("$BIN" lab env "$name") || die "unknown scenario $name"
    eval "$env_text"
    keys=""
    if [ -f "$OUT/$name.pcapng" ]; then
      cap="$OUT/$name.pcapng" # decrypted from its own DSB
    elif [ -f "$OUT/$name.pcap" ]; then
      cap="$OUT/$name.pcap"
      if [ "$USES_TLS" = 1 ]; then keys="$OUT/$name.keys"; fi
    else
      echo "record.sh: $name: no capture in $OUT, skipped" >&2
      continue
    fi
    rc=0
    check_wire "$name" "$cap" "$keys" "$OUT/$name.lab.jsonl" || rc=$?
    if [ "$rc" = 0 ]; then echo "ok    $name ($(basename "$cap"))"; else echo "FAIL  $name ($(basename "$cap"))"; failed=1; fi
  done
  exit "$failed"
fi

# TLS scenarios need tshark (the wire check decrypts with the key log) and the lab PKI.
need_tls=""
for name in $names; do
  if "$BIN" lab env "$name" | grep -q "^USES_TLS='1'"; then need_tls=1; fi
done
if [ -n "$need_tls" ]; then
  [ -n "$TSHARK" ] || die "needs tshark on PATH for the TLS scenarios' decrypted wire check (apt-get install tshark)"
  if [ -f "$PKI/lab-ca.pem" ] && [ ! -f "$PKI/lab-ca.key" ]; then
    echo "record.sh: $PKI has lab-ca.pem but not its key: making a new lab CA; TLS captures not re-recorded now will no longer chain to lab-ca.pem" >&2
  fi
  "$BIN" lab pki "$PKI" >/dev/null || die "cannot create the lab PKI in $PKI"
fi

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
  rm -f "$OUT/$name.pcap" "$OUT/$name.pcapng" "$OUT/$name.lab.jsonl" "$OUT/$name.go.json" "$OUT/$name.go.stderr" "$OUT/$name.go.exit" \
    "$OUT/$name.go-env.json" "$OUT/$name.keys" "$OUT/$name.tls.log" "$OUT/$name.true.go.sum"
  if [ "$EMBED_KEYS" = 1 ]; then
    cp "$ok/capture.pcapng" "$OUT/$name.pcapng"
  else
    cp "$ok/capture.pcap" "$OUT/$name.pcap"
  fi
  cp "$ok/lab.jsonl" "$OUT/$name.lab.jsonl"
  cp "$ok/go.json" "$OUT/$name.go.json"
  cp "$ok/go.stderr" "$OUT/$name.go.stderr"
  cp "$ok/go.exit" "$OUT/$name.go.exit"
  cp "$ok/go-env.json" "$OUT/$name.go-env.json"
  if [ "$USES_TLS" = 1 ]; then
    cp "$ok/keys" "$OUT/$name.keys"
    cp "$ok/tls.log" "$OUT/$name.tls.log"
  fi
  if [ "$USES_LAB_SUMDB" = 1 ]; then
    echo "$SUMDB_KEY" >"$OUT/lab-sumdb.vkey"
  fi
  if [ "$TRUE_GO_SUM" = 1 ]; then
    # shellcheck disable=SC2086 # DOWNLOADS is a list of module@version words
    "$BIN" lab go-sum $DOWNLOADS >"$OUT/$name.true.go.sum" || die "$name: lab go-sum failed"
  fi
  printf '%-22s %-4s packets=%-4s dropped=%s requests=%-3s go exit=%s  GOPROXY=%s\n' \
    "$name" "$INTERFACE" "$(cat "$ok/packets")" "$(cat "$ok/dropped")" "$(wc -l <"$ok/lab.jsonl")" "$(cat "$ok/go.exit")" "$GOPROXY"
  rm -rf "$WORK/$name".*
done
echo "== done"
