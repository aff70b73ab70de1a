#!/usr/bin/env bash
# Bulk benchmark: records a large capture of the real go command downloading hundreds of
# modules from a plain-HTTP lab proxy on 127.0.0.1, then measures `modtrace analyze` on it
# (best wall time of 3 runs, throughput, peak RSS) and tshark's time for the same HTTP fields
# when tshark is installed.
#
#   sudo benches/bulk.sh                      # 400 modules of ~128 KB: about 40 MB
#   sudo benches/bulk.sh --modules 600 --kb 64
#   benches/bulk.sh --capture FILE            # measure an existing capture (no root, no go)
#   sudo benches/bulk.sh --smoke              # small run for CI: fails if peak RSS >= 32 MB
set -euo pipefail
cd "$(dirname "$0")/.."

N=400 KB=128 SMOKE=0 CAPTURE="" KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --modules) N=$2; shift 2 ;;
    --kb) KB=$2; shift 2 ;;
    --smoke) SMOKE=1; N=40; KB=48; shift ;;
    --capture) CAPTURE=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "bulk.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

cargo build --release -q
BIN=$PWD/target/release/modtrace
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

if [ -z "$CAPTURE" ]; then
  [ "$(id -u)" = 0 ] || { echo "bulk.sh: recording needs root (tcpdump); or pass --capture FILE" >&2; exit 2; }
  for t in go tcpdump; do command -v $t >/dev/null || { echo "bulk.sh: needs $t" >&2; exit 2; }; done
  PORT=8099
  echo "generating $N modules of ~$KB KB"
  MODS=()
  for i in $(seq 1 "$N"); do
    m="bench.test/Mod$i" v="v1.0.$((i % 5))"
    d="$TMP/mods/$m@$v"
    mkdir -p "$d"
    printf 'module %s\n\ngo 1.21\n' "$m" > "$d/go.mod"
    printf 'package mod%d\n\nconst N = %d\n' "$i" "$i" > "$d/mod.go"
    head -c $((KB * 768)) /dev/urandom | base64 -w 76 > "$d/data.txt"
    MODS+=("$m@$v")
  done
  "$BIN" lab serve --modules "$TMP/mods" --log "$TMP/lab.jsonl" "proxy:127.0.0.1:$PORT" > "$TMP/lab.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do grep -q GOPROXY= "$TMP/lab.out" 2>/dev/null && break; sleep 0.1; done
  CAPTURE=$TMP/bulk.pcap
  tcpdump -i lo -s 0 -U --immediate-mode -B 65536 -w "$CAPTURE" "tcp port $PORT" 2> "$TMP/tcpdump.err" &
  TCPDUMP=$!
  sleep 1
  mkdir -p "$TMP/home"
  printf '%s\n' "${MODS[@]}" | env -i PATH="$PATH" HOME="$TMP/home" GOPATH="$TMP/home/go" \
      GOMODCACHE="$TMP/home/modcache" GOCACHE="$TMP/home/cache" GOPROXY="http://127.0.0.1:$PORT" \
      GOSUMDB=off GONOSUMDB= GOPRIVATE= GONOPROXY= GOINSECURE= GOFLAGS=-modcacherw GOTOOLCHAIN=local \
      xargs -n 100 go mod download -json > "$TMP/go.json"
  sleep 1
  kill -INT "$TCPDUMP"; wait "$TCPDUMP" || true
  if grep -q "^0 packets captured" "$TMP/tcpdump.err"; then echo "bulk.sh: tcpdump captured nothing" >&2; exit 1; fi
  if [ -n "$KEEP" ]; then cp "$CAPTURE" "$KEEP"; fi
fi

python3 - "$BIN" "$CAPTURE" "$SMOKE" <<'PY'
import os, shutil, subprocess, sys, time
binary, cap, smoke = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

def measure(argv, runs=5):
    """Best wall time of `runs` runs and the largest peak RSS (kB), per child via wait4.
    posix_spawn keeps the harness's own cost out of the small numbers."""
    best, rss = None, 0
    devnull = os.open(os.devnull, os.O_WRONLY)
    for _ in range(runs):
        fa = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        t0 = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=fa)
        _, status, ru = os.wait4(pid, 0)
        dt = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            sys.exit(f"{argv[0]} exited {code}")
        best = dt if best is None else min(best, dt)
        rss = max(rss, ru.ru_maxrss)
    return best, rss

size = os.path.getsize(cap)
mb = size / 1e6
t, rss = measure([binary, "analyze", cap, "--format", "json", "-o", "/dev/null", "--no-progress"])
t_text, rss_text = measure([binary, "analyze", cap, "--no-progress"])
t_nz, rss_nz = measure([binary, "analyze", cap, "--format", "json", "-o", "/dev/null", "--no-progress", "--no-zip-hashes"])
print(f"capture: {cap} ({mb:.1f} MB)")
print(f"modtrace analyze --format json: {t*1000:.0f} ms, {mb/t:.0f} MB/s, peak RSS {rss/1024:.1f} MB")
print(f"modtrace analyze (text):        {t_text*1000:.0f} ms, {mb/t_text:.0f} MB/s, peak RSS {rss_text/1024:.1f} MB")
print(f"modtrace analyze --format json --no-zip-hashes: {t_nz*1000:.0f} ms, {mb/t_nz:.0f} MB/s, peak RSS {rss_nz/1024:.1f} MB")
if shutil.which("tshark"):
    tt, trss = measure(["tshark", "-r", cap, "-Y", "http.request or http.response", "-T", "fields",
                        "-e", "http.host", "-e", "http.request.uri", "-e", "http.response.code"])
    print(f"tshark -Y 'http.request or http.response' -T fields: {tt*1000:.0f} ms, peak RSS {trss/1024:.1f} MB")
    print(f"speed-up over tshark: {tt/t:.1f}x (every zip hashed), {tt/t_nz:.1f}x (--no-zip-hashes)")
else:
    print("tshark not installed: no comparison")
peak = max(rss, rss_text, rss_nz) / 1024
if peak >= 32:
    sys.exit(f"peak RSS {peak:.1f} MB is over the 32 MB target")
PY
