#!/usr/bin/env bash
# tickinfer-serve's KServe v2 inference against the REST peer (scripts/peer_rest.py: FastAPI + uvicorn, the same
# TorchScript model), alternating in one session (docs/PERFORMANCE.md): per round the peer, then tickinfer batched
# (rows through the pipeline, 1 I/O thread, max_delay 0), direct with 1 I/O thread and direct with 2 (rows on the
# I/O thread), each with scripts/bench_rest.sh (1 then 8 connections; direct-t2: 8 only) and the server's CPU per
# request. Prints one line per server and round. Usage: scripts/bench_rest_vs_peer.sh BUILD_DIR [ROUNDS] [SECONDS]
set -euo pipefail
build=${1:?BUILD_DIR} rounds=${2:-3} seconds=${3:-6}
root=$(cd "$(dirname "$0")/.." && pwd)
model=$build/models/replay_mlp.pt
width=$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["names"]))' \
  "$build/models/replay_schema.json")
work=$(mktemp -d "${TMPDIR:-/tmp}/tickinfer_bench_rest.XXXXXX")
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ready() {  # PORT: until /v2/health/ready answers 200 (at most 60 s)
  for _ in $(seq 1200); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/health/ready" || true) == 200 ]] && return 0
    sleep 0.05
  done
  echo "bench_rest_vs_peer: the server on $1 never became ready" >&2
  return 1
}
bench() {  # NAME RUNS PORT
  echo "$1 $(BENCH_REST_PID=$pid BENCH_REST_RUNS=$2 "$root/scripts/bench_rest.sh" \
    "http://127.0.0.1:$3/v2/models/$name/infer" "$width" "$seconds" | tr '\n' ' ')"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}
name=$(/usr/bin/python3 -c 'import json,sys,zipfile
z = zipfile.ZipFile(sys.argv[1])
print(json.loads(z.read([n for n in z.namelist() if n.endswith("tickinfer.json")][0]))["name"])' "$model")
tickinfer() {  # NAME RUNS --set...
  local label=$1 runs=$2 port
  shift 2
  port=$(free_port)
  "$build/apps/tickinfer-serve" --config "$root/configs/serve.toml" --set model.path="\"$model\"" \
    --set http.listen="\"127.0.0.1:$port\"" --set predictions.tcp='""' --set feed.listen='"127.0.0.1:0"' "$@" \
    >"$work/serve.log" 2>&1 &
  pid=$!
  ready "$port"
  bench "$label" "$runs" "$port"
}
echo "bench_rest_vs_peer: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), model $model ($width features)"
for round in $(seq "$rounds"); do
  echo "-- round $round"
  port=$(free_port)
  /usr/bin/python3 "$root/scripts/peer_rest.py" --model "$model" --port "$port" >"$work/peer.log" 2>&1 &
  pid=$!
  ready "$port"
  bench peer "1:1 2:8" "$port"
  tickinfer batched-t1 "1:1 2:8" --set http.threads=1 --set pipeline.max_delay_us=0
  tickinfer direct-t1 "1:1 2:8" --set http.threads=1 --set pipeline.mode='"direct"'
  tickinfer direct-t2 "2:8" --set http.threads=2 --set pipeline.mode='"direct"'
done
