#!/usr/bin/env bash
# Bulk benchmark: records a large capture of the real go command downloading hundreds of
# modules from a plain-HTTP lab proxy on 127.0.0.1, then measures on it, side by side (best
# wall time of 5 runs, peak RSS):
#   - `modtrace analyze` with every zip hashed: on worker threads (default) and on the packet
#     path (--threads 0); and without zip hashes (--no-zip-hashes: the wire path);
#   - tshark extracting the same HTTP fields (when installed);
#   - Go's own h1 work (benches/dirhash: dirhash.HashZip with the standard library) over the
#     zips extracted from the capture (tshark --export-objects), when go and tshark are
#     installed; its h1 values must be modtrace's.
#
#   sudo benches/bulk.sh                      # 400 modules of ~128 KB: about 40 MB
#   sudo benches/bulk.sh --modules 600 --kb 64
#   benches/bulk.sh --capture FILE            # measure an existing capture (no root)
#   sudo benches/bulk.sh --smoke              # small run for CI: fails if peak RSS >= 32 MB
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lab.sh

N=400 KB=128 SMOKE=0 CAPTURE="" KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --modules) N=$2; shift 2 ;;
    --kb) KB=$2; shift 2 ;;
    --smoke) SMOKE=1; N=40; KB=48; shift ;;
    --capture) CAPTURE=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
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
  make_modules "$TMP/mods" "$N" "$KB"
  serve_modules "$BIN" "$TMP/mods" "$PORT" "$TMP"
  CAPTURE=$TMP/bulk.pcap
  tcpdump -i lo -s 0 -U --immediate-mode -B 65536 -w "$CAPTURE" "tcp port $PORT" 2> "$TMP/tcpdump.err" &
  TCPDUMP=$!
  sleep 1
  download_modules "$PORT" "$TMP"
  sleep 1
  kill -INT "$TCPDUMP"; wait "$TCPDUMP" || true
  if grep -q "^0 packets captured" "$TMP/tcpdump.err"; then echo "bulk.sh: tcpdump captured nothing" >&2; exit 1; fi
  if [ -n "$KEEP" ]; then cp "$CAPTURE" "$KEEP"; fi
fi

# Go's h1 over the zips in the capture: extracted by tshark, hashed by benches/dirhash.
DIRHASH="" ZIPS=""
if command -v go >/dev/null && command -v tshark >/dev/null; then
  ZIPS=$TMP/objects
  mkdir -p "$ZIPS" "$TMP/gohome"
  tshark -r "$CAPTURE" -Q --export-objects "http,$ZIPS" 2>/dev/null || true
  DIRHASH=$TMP/dirhash
  # The build cache is the machine's (built standard packages); modules: none, from nowhere.
  GOBUILDCACHE=$(go env GOCACHE)
  (cd benches/dirhash && env -i PATH="$PATH" HOME="$TMP/gohome" GOPROXY=off GOSUMDB=off GONOSUMDB= \
     GOPRIVATE= GOINSECURE= GOFLAGS= GOTOOLCHAIN=local GOMODCACHE="$TMP/gohome/mod" \
     GOCACHE="$GOBUILDCACHE" go build -o "$DIRHASH" .) || DIRHASH=""
fi

python3 - "$BIN" "$CAPTURE" "$SMOKE" "$DIRHASH" "$ZIPS" <<'PY'
import json, os, shutil, subprocess, sys, time
binary, cap, smoke, dirhash, zips = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4], sys.argv[5]

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
analyze = [binary, "analyze", cap, "--format", "json", "-o", "/dev/null", "--no-progress"]
rows = []
def row(name, t, rss):
    rows.append((name, t, rss))
    print(f"{name:<52} {t*1000:6.0f} ms {mb/t:6.0f} MB/s  peak RSS {rss/1024:6.1f} MB")

print(f"capture: {cap} ({mb:.1f} MB), {os.cpu_count()} cores")
t, rss = measure(analyze)
row("modtrace analyze --format json", t, rss)
t0, rss0 = measure(analyze + ["--threads", "0"])
row("modtrace analyze --format json --threads 0", t0, rss0)
t_text, rss_text = measure([binary, "analyze", cap, "--no-progress"])
row("modtrace analyze (text)", t_text, rss_text)
t_nz, rss_nz = measure(analyze + ["--no-zip-hashes"])
row("modtrace analyze --format json --no-zip-hashes", t_nz, rss_nz)
if shutil.which("tshark"):
    tt, trss = measure(["tshark", "-r", cap, "-Y", "http.request or http.response", "-T", "fields",
                        "-e", "http.host", "-e", "http.request.uri", "-e", "http.response.code"])
    row("tshark -Y 'http.request or http.response' -T fields", tt, trss)
    print(f"faster than tshark: {tt/t:.1f}x (every zip hashed), {tt/t_nz:.1f}x (--no-zip-hashes)")
else:
    print("tshark not installed: no comparison")
if dirhash:
    td, drss = measure([dirhash, zips])
    row("Go dirhash.HashZip over the extracted zips", td, drss)
    print(f"faster than Go's dirhash alone: {td/t:.1f}x")
    # The same h1 values: Go's over the extracted zips, modtrace's over the capture.
    go = sorted(l.split()[0] for l in subprocess.run([dirhash, zips], capture_output=True,
                text=True, check=True).stdout.splitlines())
    report = json.loads(subprocess.run(analyze[:3] + ["--format", "json", "--no-progress"],
                        capture_output=True, text=True).stdout)
    ours = sorted(e["h1"] for e in report["exchanges"] if e.get("op") == "zip" and e.get("h1"))
    if go != ours:
        sys.exit(f"h1 values differ: Go {len(go)} zips, modtrace {len(ours)}")
    print(f"h1 of all {len(go)} zips: the same from Go and from modtrace")
else:
    print("go or tshark not installed: no Go dirhash comparison")
peak = max(r[2] for r in rows if r[0].startswith("modtrace")) / 1024
if peak >= 32:
    sys.exit(f"peak RSS {peak:.1f} MB is over the 32 MB target")
PY
