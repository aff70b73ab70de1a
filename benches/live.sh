#!/usr/bin/env bash
# Live benchmark: `modtrace capture` on loopback while the lab serves a bulk download to the
# real go command as fast as both can go (400 modules of ~128 KB by default). Reports the rate
# the download reached, the kernel's drop counters at the end of the capture (the goal is 0:
# the capture thread only reads packets, the analysis and the zip hashing run elsewhere), and
# whether every zip was hashed (an `exchange` event with its h1 for each module's zip).
#
#   sudo benches/live.sh                      # 400 modules of ~128 KB, one go command
#   sudo benches/live.sh --modules 800 --kb 256 --parallel 8
#   sudo benches/live.sh --threads 0          # zips hashed on the analysis thread
#   sudo benches/live.sh --curl               # curl fetches the zips over one connection, as
#                                             # fast as loopback goes (no go: no h1 to compare)
#
# Needs root, go and a build with the `live` feature (built here: libpcap-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lab.sh

N=400 KB=128 PARALLEL=1 CURL=0 THREADS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --modules) N=$2; shift 2 ;;
    --kb) KB=$2; shift 2 ;;
    --parallel) PARALLEL=$2; shift 2 ;;
    --curl) CURL=1; shift ;;
    --threads) THREADS=(--threads "$2"); shift 2 ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "live.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "live.sh: needs root (live capture)" >&2; exit 2; }
command -v go >/dev/null || { echo "live.sh: needs go" >&2; exit 2; }
command -v curl >/dev/null || { echo "live.sh: needs curl" >&2; exit 2; }

cargo build --release -q --features live
BIN=$PWD/target/release/modtrace
TMP=$(mktemp -d)
chmod 755 "$TMP"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

PORT=8097
echo "generating $N modules of ~$KB KB"
make_modules "$TMP/mods" "$N" "$KB"
serve_modules "$BIN" "$TMP/mods" "$PORT" "$TMP"

# The capture's standard output is the JSON Lines event stream, ending with its summary.
"$BIN" capture -i lo -f "tcp port $PORT" --no-tui --format jsonl --no-go-keys "${THREADS[@]}" \
    > "$TMP/events.jsonl" 2> "$TMP/capture.err" &
CAPTURE=$!
PIDS+=($CAPTURE)
for _ in $(seq 1 100); do grep -q 'capturing' "$TMP/capture.err" 2>/dev/null && break; sleep 0.1; done
sleep 1

START=$(date +%s.%N)
if [ "$CURL" = 1 ]; then
  # Every zip's GOPROXY URL (upper case escaped as !lower), fetched on one kept-alive connection.
  for mv in "${MODS[@]}"; do
    m=${mv%@*} v=${mv#*@}
    esc=$(printf '%s' "$m" | sed -E 's/([A-Z])/!\L\1/g')
    printf 'url = "http://127.0.0.1:%s/%s/@v/%s.zip"\noutput = "/dev/null"\n' "$PORT" "$esc" "$v"
  done > "$TMP/curl.cfg"
  curl -s -f -K "$TMP/curl.cfg"
  : > "$TMP/go.json"
else
  download_modules "$PORT" "$TMP" "$PARALLEL"
fi
END=$(date +%s.%N)
# Let the analysis finish what it has, then stop the capture as Ctrl-C would.
sleep 2
kill -INT "$CAPTURE"
wait "$CAPTURE" || true

python3 - "$TMP/events.jsonl" "$TMP/go.json" "$START" "$END" "$N" "$TMP/capture.err" "$PARALLEL" "$CURL" <<'PY'
import json, sys
events, go_json, start, end, n, err = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
lines = [json.loads(l) for l in open(events) if l.strip()]
summary = next((l for l in lines if l.get("type") == "summary"), None)
if summary is None:
    sys.exit("live.sh: the capture gave no summary:\n" + open(err).read())
# What go says it downloaded: its Sum is the h1 of each zip.
dec = json.JSONDecoder()
text, go_sums, i = open(go_json).read(), {}, 0
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    v, i = dec.raw_decode(text, i)
    go_sums[(v["Path"], v["Version"])] = v.get("Sum")
zips = {(e.get("module"), e.get("version")): e.get("h1") for e in lines
        if e.get("type") == "exchange" and e.get("op") == "zip"}
curl = sys.argv[8] == "1"
if curl:
    # No go: every zip exchange must carry an h1 (the lab built each zip as go would).
    go_sums = {k: h for k, h in zips.items() if h}
    hashed = len(go_sums)
else:
    hashed = sum(1 for k, s in go_sums.items() if s and zips.get(k) == s)
kernel = summary.get("kernel", {})
cap = summary.get("capture", {})
secs = end - start
mb = cap.get("bytes", 0) / 1e6
if curl:
    print(f"curl fetched {len(zips)} zips on one connection: {secs:.2f} s")
else:
    print(f"go mod download of {len(go_sums)} modules ({sys.argv[7]} go commands at once): {secs:.2f} s")
print(f"captured: {cap.get('packets', 0)} packets, {mb:.1f} MB: {mb / secs:.0f} MB/s over the download")
print(f"kernel: received {kernel.get('received')}, dropped {kernel.get('dropped')}, "
      f"interface dropped {kernel.get('if_dropped')}")
print(f"zips hashed{'' if curl else ' with the h1 go printed'}: {hashed} of {n}")
bad = (kernel.get("dropped", 1) or 0) + (kernel.get("if_dropped", 1) or 0)
if len(go_sums) != n or hashed != n or bad:
    sys.exit("live.sh: FAILED (drops, or zips not hashed)")
PY
