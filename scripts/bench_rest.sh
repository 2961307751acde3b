#!/usr/bin/env bash
# Load-tests a KServe v2 inference endpoint (the REST peer, scripts/peer_rest.py, or tickinfer's) with wrk and
# scripts/wrk_infer.lua: one-row requests of WIDTH features, first over 1 connection (1 thread), then 8 (2 threads),
# SECONDS each (default 10), and prints one line of key=value pairs per run, e.g.
#   run=c1 threads=1 connections=1 seconds=10 requests=12345 rps=1234.5 p50_us=789 p90_us=900 p99_us=1500
#   max_us=9000 non2xx=0 socket_errors=0                                          (one line in the output)
# Latencies are wrk's (--latency: per request, measured at the client, microseconds).
# Usage: scripts/bench_rest.sh URL WIDTH [SECONDS]
#   e.g. scripts/bench_rest.sh http://127.0.0.1:8000/v2/models/mlp/infer 32
#   env: BENCH_REST_RUNS ("1:1 2:8", threads:connections pairs), WRK (wrk), BENCH_REST_PID (the server's pid: each
#        line also gets cpu_us_per_request, its user + system CPU over the run per request, /proc/PID/stat; a
#        measure the VM's noise moves far less than requests/s, and the throughput one free core would give)
set -euo pipefail
if (($# < 2)); then
  sed -n '2,11s/^# \{0,1\}//p' "$0" >&2
  exit 2
fi
url=$1 width=$2 seconds=${3:-10}
script=$(cd "$(dirname "$0")" && pwd)/wrk_infer.lua
wrk=${WRK:-wrk}
command -v "$wrk" >/dev/null || { echo "bench_rest: no $wrk (apt-get install wrk)" >&2; exit 1; }

# wrk prints "1.23ms", "456.78us", "1.02s", "2.00m": microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    f = (u == "us") ? 1 : (u == "ms") ? 1e3 : (u == "s") ? 1e6 : (u == "m") ? 6e7 : (u == "h") ? 3.6e9 : -1;
    if (f < 0) { print "nan"; exit }
    printf "%.0f", n * f }'
}

# Fail early, with the server's answer, when the endpoint does not answer 200 to one row of 0.5s.
probe=$(awk -v w="$width" 'BEGIN {
  printf "{\"inputs\":[{\"name\":\"features\",\"shape\":[1,%d],\"datatype\":\"FP32\",\"data\":[", w
  for (i = 0; i < w; i++) printf "%s0.5", (i ? "," : "")
  print "]}]}" }')
answer=$(mktemp)
trap 'rm -f "$answer"' EXIT
status=$(curl -s -o "$answer" -w '%{http_code}' -H 'Content-Type: application/json' --data "$probe" "$url" || true)
if [[ $status != 200 ]]; then
  echo "bench_rest: $url answered ${status:-nothing}: $(head -c 300 "$answer")" >&2
  exit 1
fi

for run in ${BENCH_REST_RUNS:-1:1 2:8}; do
  threads=${run%%:*} connections=${run##*:}
  cpu_ticks() { [[ -n ${BENCH_REST_PID:-} ]] && awk '{ print $14 + $15 }' "/proc/$BENCH_REST_PID/stat" || echo 0; }
  cpu_before=$(cpu_ticks)
  out=$("$wrk" -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$script" "$url" -- "$width")
  cpu_after=$(cpu_ticks)
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  requests=$(awk '/requests in/ { print $1 }' <<<"$out")
  pct() { awk -v p="$1" '/Latency Distribution/ { d = 1; next } d && $1 == p { print $2; exit }' <<<"$out"; }
  max=$(awk '$1 == "Latency" && NF >= 5 { print $4; exit }' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
  errors=$(awk '/Socket errors:/ { s = 0; for (i = 3; i <= NF; i += 2) s += $(i + 1) + 0; print s }' <<<"$out")
  echo "run=c$connections threads=$threads connections=$connections seconds=$seconds requests=${requests:-?}" \
       "rps=${rps:-?} p50_us=$(to_us "$(pct 50%)") p90_us=$(to_us "$(pct 90%)") p99_us=$(to_us "$(pct 99%)")" \
       "max_us=$(to_us "$max") non2xx=${non2xx:-0} socket_errors=${errors:-0}" \
       "$([[ -n ${BENCH_REST_PID:-} && -n $requests ]] && awk -v d=$((cpu_after - cpu_before)) -v n="$requests" \
          -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "cpu_us_per_request=%.1f", d / hz * 1e6 / n }')"
done
