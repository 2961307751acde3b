#!/usr/bin/env bash
# UDP feed in -> prediction record out on loopback (docs/PERFORMANCE.md): tickinfer-feed sends EVENTS synthetic
# capture events (16 symbols, one message per datagram) at RATE messages/s, pinned to the last core with taskset,
# into tickinfer-serve on the bundled model with configs/serve.toml plus any --set overrides given after the first
# three arguments. Prints the daemon's own receive-to-record histogram and its counts (from --summary-json).
# Usage: scripts/bench_udp.sh BUILD_DIR RATE EVENTS [--set section.key=VALUE ...]
#   e.g. scripts/bench_udp.sh build 100000 300000 --set pipeline.mode='"direct"' --set feed.spin_us=1000000
set -euo pipefail
build=${1:?BUILD_DIR} rate=${2:?RATE} events=${3:?EVENTS}
shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tickinfer_bench_udp.XXXXXX")
serve_pid=
cleanup() {
  [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
last_core=$(($(nproc) - 1))
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/apps/tickinfer-replay" --events "$events" --symbols 16 --write-capture "$work/syn.cap" >/dev/null
: >"$work/serve.log"  # exists before the daemon's shell opens it: the wait below greps it at once
"$build/apps/tickinfer-serve" --config "$root/configs/serve.toml" --summary-json "$work/summary.json" \
  --set model.path="\"$build/models/replay_mlp.pt\"" --set feed.format='"capture"' \
  --set feed.listen="\"127.0.0.1:$port\"" --set predictions.udp='"127.0.0.1:9"' --set predictions.tcp='""' \
  --set http.listen='""' --set pipeline.keys=64 "$@" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 200); do grep -q "serving" "$work/serve.log" && break; sleep 0.05; done
grep -q "serving" "$work/serve.log" || { cat "$work/serve.log" >&2; exit 1; }
taskset -c "$last_core" "$build/apps/tickinfer-feed" --data "$work/syn.cap" --dest "127.0.0.1:$port" --rate "$rate" \
  --max-messages-per-packet 1 >/dev/null
sleep 0.5
kill -TERM "$serve_pid"
wait "$serve_pid"
serve_pid=
grep "receive to record out" "$work/serve.log" | sed 's/.*: receive/receive/'
python3 - "$work/summary.json" <<'ENDPY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"events {s['events']}, ok {s['ok']}, gaps {s['gaps']} ({s['missing_messages']} missing), rejected {s['rejected']}")
ENDPY
