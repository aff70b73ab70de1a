# Shell helpers shared by captures/record.sh and scripts/ci-example.sh (sourced, not run).

# stop_pid PID SIGNAL: signal one process the script started, give it 5 s to exit, then
# SIGKILL it; reap it either way. An empty PID is nothing to stop.
stop_pid() {
  local pid=$1 sig=$2
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
