#!/usr/bin/env bash
# Flow flood benchmark: a SYN to a new port for each of N flows (benches/flood.py), then one
# real module exchange (captures/plaintext-proxy.pcap). Measures `modtrace analyze` (wall
# time, peak RSS), checks that the module exchanges are still found and that the evictions
# are counted, and measures tshark on the same file when it is installed.
#
#   benches/flood.sh                   # 1,000,000 flows
#   benches/flood.sh --flows 200000
#   benches/flood.sh --check           # exit 1 when peak RSS is over 64 MB or a module is lost
#   benches/flood.sh --check --no-tshark   # CI: tshark alone takes about 30 s and 1.7 GB here
set -euo pipefail
cd "$(dirname "$0")/.."

FLOWS=1000000 CHECK=0 TSHARK=1
while [ $# -gt 0 ]; do
  case "$1" in
    --flows) FLOWS=$2; shift 2 ;;
    --check) CHECK=1; shift ;;
    --no-tshark) TSHARK=0; shift ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "flood.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

cargo build --release -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/modtrace
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 benches/flood.py "$TMP/flood.pcap" --flows "$FLOWS"
echo "capture: $FLOWS SYNs, then captures/plaintext-proxy.pcap; $(du -h "$TMP/flood.pcap" | cut -f1)"

python3 - "$BIN" "$TMP" "$CHECK" "$TSHARK" <<'EOF'
import json, os, resource, shutil, subprocess, sys, time
bin_, tmp, check, tshark = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
cap = os.path.join(tmp, "flood.pcap")

def measure(cmd):
    """Wall time and peak RSS (kB) of one run, via wait4."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    return time.monotonic() - t, ru.ru_maxrss, status

report = os.path.join(tmp, "report.json")
t, rss, status = measure([bin_, "analyze", cap, "--format", "json", "--fail-on", "never", "-o", report])
if status != 0:
    sys.exit(f"modtrace analyze failed (status {status})")
r = json.load(open(report))
tcp = r["capture"]["tcp"]
modules = sorted(f"{m['module']}@{m['version']}" for m in r["modules"])
print(f"modtrace analyze --format json: {t:.2f} s, peak RSS {rss / 1024:.1f} MB; "
      f"flows {tcp['flows']}, evicted {tcp['evicted']}; exchanges {len(r['exchanges'])}; modules {modules}")
if tshark and shutil.which("tshark"):
    tt, trss, _ = measure(["tshark", "-n", "-r", cap, "-Y", "http.request", "-T", "fields", "-e", "http.request.uri"])
    print(f"tshark -Y http.request -T fields: {tt:.2f} s, peak RSS {trss / 1024:.1f} MB")
if check:
    problems = []
    if rss / 1024 > 64:
        problems.append(f"peak RSS {rss / 1024:.1f} MB is over 64 MB")
    if modules != ["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"]:
        problems.append(f"modules {modules}: the exchange after the flood was lost")
    if tcp["evicted"] == 0:
        problems.append("no eviction counted")
    if problems:
        sys.exit("; ".join(problems))
EOF
