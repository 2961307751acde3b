# Sourced by the daemon's script tests (serve_e2e.sh, serve_hot_swap.sh): free ports, a daemon started from a config
# and waited for until it serves, stopped with SIGTERM (it must exit 0), waits with a bound. Needs $serve, $work and
# $work; defines fail() and the exit trap; keeps the daemon's pid in $serve_pid (empty when none runs).
serve_pid= sub_pid= udp_pid=
pids=()                                     # more processes to kill at exit
logs=${logs:-"serve.log sub.log feed.out"}  # files under $work that fail() prints

# fail MESSAGE: the message and the tail of each log, then exit 1.
fail() {
  echo "$(basename "$0" .sh): $*" >&2
  for f in $logs; do [[ -f $work/$f ]] && { echo "--- $f:" >&2; tail -60 "$work/$f" >&2; }; done
  exit 1
}

# At exit: the daemon, the subscribers and $pids killed, $work removed.
cleanup() {
  for p in "${pids[@]}" $serve_pid $sub_pid $udp_pid; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  "$(command -v python3)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS (polling every 50 ms); false if it never did.
wait_for() {
  local tries=$(($1 * 20))
  shift
  for _ in $(seq "$tries"); do
    "$@" && return 0
    sleep 0.05
  done
  return 1
}

# start_daemon CONFIG: the daemon on CONFIG (log serve.log, counts summary.json), once it says it serves.
start_daemon() {
  rm -f "$work/summary.json"
  "$serve" --config "$1" --summary-json "$work/summary.json" >"$work/serve.log" 2>&1 &
  serve_pid=$!
  serving_or_gone() { grep -q "serve \[info\]: serving" "$work/serve.log" || ! kill -0 "$serve_pid" 2>/dev/null; }
  wait_for 60 serving_or_gone && grep -q "serve \[info\]: serving" "$work/serve.log" ||
    fail "the daemon did not start serving"
}

# stop_daemon: SIGTERM; it drains, flushes and must exit 0.
stop_daemon() {
  kill -TERM "$serve_pid"
  local status=0
  wait "$serve_pid" || status=$?
  serve_pid=
  ((status == 0)) || fail "the daemon exited with status $status on SIGTERM"
}

# expect_summary "key=value ...": the last run's summary.json has exactly these counts.
expect_summary() {
  "$(command -v python3)" - "$work/summary.json" "$1" <<'ENDPY'
import json, sys
s = json.load(open(sys.argv[1]))
bad = [f"{k}={s.get(k)} (expected {v})" for k, v in (p.split("=") for p in sys.argv[2].split()) if str(s.get(k)) != v]
if bad:
    sys.exit("summary: " + ", ".join(bad))
ENDPY
}
