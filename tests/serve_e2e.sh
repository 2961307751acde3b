#!/usr/bin/env bash
# tickinfer-feed -> tickinfer-serve -> a TCP prediction subscriber, on loopback: the daemon's predictions equal
# tickinfer-replay --predictions on the same data and model byte for byte (batches of 1 on both sides), gap,
# duplicate and corrupt-packet injection is counted exactly while the rest is still predicted, a subscriber that does
# not read is dropped without slowing anything, and bad configs are refused naming the file and line.
# Usage: serve_e2e.sh REPLAY FEED SERVE SOURCE_DIR
set -euo pipefail
replay=$1 feed=$2 serve=$3 src=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/tickinfer_serve_e2e.XXXXXX")
serve_pid= sub_pid=
cleanup() {
  [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null || true
  [[ -n $sub_pid ]] && kill "$sub_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "serve_e2e: $*" >&2
  for f in serve.log sub.log feed.out; do [[ -f $work/$f ]] && { echo "--- $f:" >&2; cat "$work/$f" >&2; }; done
  exit 1
}
free_port() { "$(command -v python3)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A config the daemon refuses: exit 1, the file and line (or the --set) named.
refused() {  # expected stderr, then the daemon's arguments
  local want=$1 got status=0
  shift
  got=$("$serve" "$@" 2>&1 >/dev/null) || status=$?
  [[ $status == 1 && $got == "$want" ]] || fail "expected exit 1 and '$want', got $status and '$got'"
}
printf '[pipeline]\nmax_batch = 8\nbogus = 1\n' >"$work/bad.toml"
refused "tickinfer-serve: $work/bad.toml:3: pipeline.bogus: unknown key (docs/SERVE.md lists every key)" \
  --config "$work/bad.toml"
printf '[feed]\nlisten = "127.0.0.1"\n' >"$work/bad.toml"
refused "tickinfer-serve: $work/bad.toml:2: feed.listen: '127.0.0.1' is not HOST:PORT" --config "$work/bad.toml"
printf '[model]\npath = "a.pt"\ndir = "/tmp"\n' >"$work/bad.toml"
refused "tickinfer-serve: $work/bad.toml: give exactly one of model.path and model.dir" --config "$work/bad.toml"
refused "tickinfer-serve: --set 'pipeline.max_batch=0': pipeline.max_batch: 0 is out of range [1, 4096]" \
  --config "$src/configs/serve.toml" --set pipeline.max_batch=0
refused "tickinfer-serve: $work/none.toml: no such config file" --config "$work/none.toml"

"$replay" --events 20000 --symbols 8 --write-capture "$work/syn.cap" >/dev/null

# One daemon run over the capture: start, wait until it serves, subscribe, feed (extra tickinfer-feed options in
# $2...), stop with SIGTERM, and check the summary's counts against "key=value" pairs in $1.
run() {
  local expect=$1 count=$2
  shift 2
  local feed_port tcp_port
  feed_port=$(free_port) tcp_port=$(free_port)
  cat >"$work/serve.toml" <<ENDTOML
[model]
path = "$model"
[features]
config = "$src/configs/default.toml"
[pipeline]
max_batch = 1
keys = 64
[feed]
listen = "127.0.0.1:$feed_port"
format = "capture"
[predictions]
tcp = "127.0.0.1:$tcp_port"
[http]
listen = "127.0.0.1:0"
ENDTOML
  rm -f "$work/got.csv" "$work/got.csv.connected" "$work/summary.json"
  "$serve" --config "$work/serve.toml" --summary-json "$work/summary.json" >"$work/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 600); do
    grep -q "serve \[info\]: serving" "$work/serve.log" && break
    kill -0 "$serve_pid" 2>/dev/null || fail "the daemon exited before serving"
    sleep 0.1
  done
  "$serve" subscribe --tcp "127.0.0.1:$tcp_port" --csv "$work/got.csv" --count "$count" --timeout 60 \
    >"$work/sub.log" 2>&1 &
  sub_pid=$!
  for _ in $(seq 600); do [[ -e $work/got.csv.connected ]] && break; sleep 0.05; done
  grep -q "subscriber .* connected" "$work/serve.log" || sleep 0.5
  # A modest rate: the kernel's socket buffers never overflow on a loaded machine (loss would be a gap).
  "$feed" --data "$work/syn.cap" --dest "127.0.0.1:$feed_port" --rate 50000 "$@" >"$work/feed.out" 2>&1 ||
    fail "tickinfer-feed failed"
  wait "$sub_pid" || fail "the subscriber did not get $count records"
  sub_pid=
  kill -TERM "$serve_pid"
  wait "$serve_pid" || fail "the daemon exited with status $? on SIGTERM"
  serve_pid=
  "$(command -v python3)" - "$work/summary.json" "$expect" <<'ENDPY'
import json, sys
s = json.load(open(sys.argv[1]))
bad = [f"{k}={s.get(k)} (expected {v})" for k, v in (p.split("=") for p in sys.argv[2].split()) if str(s.get(k)) != v]
if bad:
    sys.exit("serve_e2e: summary " + ", ".join(bad))
ENDPY
}

model=$(dirname "$replay")/../models/replay_mlp.pt  # the build tree's bundled model
[[ -f $model ]] || fail "no bundled model at $model"

# 1. Every event predicted, and the predictions are tickinfer-replay's.
run "messages=20000 events=20000 submitted=20000 ok=20000 records=20000 gaps=0 malformed_packets=0" 20000 ||
  fail "clean run"
"$replay" "$work/syn.cap" --symbol '*' --predictions "$work/want.csv" --max-batch 1 --quiet --json "$work/replay.json" >/dev/null
cmp "$work/want.csv" "$work/got.csv" || fail "the daemon's predictions differ from tickinfer-replay's"

# 2. One message per packet; every 100th packet dropped, every 50th sent twice, every 70th corrupted (refused whole:
#    a gap for its messages). tickinfer-feed says what a receiver must count; the daemon must count exactly that and
#    predict every message that arrived.
inject=(--max-messages-per-packet 1 --gap-every 100 --duplicate-every 50 --corrupt-every 70)
"$feed" --data "$work/syn.cap" --dest 127.0.0.1:9 "${inject[@]}" --json "$work/expected.json" >/dev/null
expect=$("$(command -v python3)" - "$work/expected.json" <<'ENDPY'
import json, sys
e = json.load(open(sys.argv[1]))["expected_receiver"]
assert e["gaps"] > 0 and e["duplicate_packets"] > 0 and e["malformed_packets"] > 0, e
n = e["messages"]
print(f"messages={n} events={n} submitted={n} ok={n} records={n} gaps={e['gaps']} "
      f"missing_messages={e['missing_messages']} duplicate_packets={e['duplicate_packets']} "
      f"duplicate_messages={e['duplicate_messages']} malformed_packets={e['malformed_packets']}")
ENDPY
) || fail "no receiver expectations in tickinfer-feed --json"
count=$(sed 's/^messages=\([0-9]*\) .*/\1/' <<<"$expect")
run "$expect" "$count" "${inject[@]}" || fail "injected run"
# 3. A subscriber that never reads (a 4 KiB receive buffer) is dropped once the daemon's bound is behind it
#    (tcp_buffer_bytes, and the same in the kernel's send buffer); the daemon keeps predicting every event.
slow_run() {
  local feed_port tcp_port py
  py=$(command -v python3)
  feed_port=$(free_port) tcp_port=$(free_port)
  cat >"$work/serve.toml" <<ENDTOML
[model]
path = "$model"
[features]
config = "$src/configs/default.toml"
[pipeline]
keys = 64
[feed]
listen = "127.0.0.1:$feed_port"
format = "capture"
[predictions]
tcp = "127.0.0.1:$tcp_port"
tcp_buffer_bytes = 65536
[http]
listen = ""
ENDTOML
  "$serve" --config "$work/serve.toml" --summary-json "$work/summary.json" >"$work/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 600); do grep -q "serve \[info\]: serving" "$work/serve.log" && break; sleep 0.1; done
  "$py" -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
time.sleep(60)' "$tcp_port" &
  sub_pid=$!
  for _ in $(seq 600); do grep -q "subscriber .* connected" "$work/serve.log" && break; sleep 0.05; done
  "$feed" --data "$work/syn.cap" --dest "127.0.0.1:$feed_port" --rate 50000 >"$work/feed.out" 2>&1 ||
    fail "tickinfer-feed failed"
  for _ in $(seq 600); do grep -q "dropped: " "$work/serve.log" && break; sleep 0.05; done
  kill -TERM "$serve_pid"
  wait "$serve_pid" || fail "the daemon exited with status $? on SIGTERM"
  serve_pid=
  kill "$sub_pid" 2>/dev/null || true
  sub_pid=
  grep -q "output: subscriber 127.0.0.1:[0-9]* dropped: .* bytes behind" "$work/serve.log" ||
    fail "the slow subscriber was not dropped"
  "$py" - "$work/summary.json" <<'ENDPY'
import json, sys
s = json.load(open(sys.argv[1]))
if s["subscribers_dropped"] != 1 or s["ok"] != 20000 or s["records"] != 20000:
    sys.exit(f"serve_e2e: slow subscriber run: {s}")
ENDPY
}
slow_run || fail "slow subscriber run"

# 4. Multicast in, where this host routes loopback multicast (a probe decides; containers may not): the daemon joins
#    the group and predicts every event the sender multicasts.
multicast=skipped
if "$(command -v python3)" - <<'ENDPY'
import socket, struct, sys
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("239.0.0.7", 0))
port = r.getsockname()[1]
r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton("239.0.0.7"),
                                                                      socket.inet_aton("127.0.0.1")))
r.settimeout(1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
s.sendto(b"probe", ("239.0.0.7", port))
try:
    r.recv(16)
except OSError:
    sys.exit(1)
ENDPY
then
  feed_port=$(free_port)
  cat >"$work/serve.toml" <<ENDTOML
[model]
path = "$model"
[features]
config = "$src/configs/default.toml"
[pipeline]
keys = 64
[feed]
listen = "127.0.0.1:$feed_port"
group = "239.0.0.7"
format = "capture"
[predictions]
tcp = ""
[http]
listen = ""
ENDTOML
  "$serve" --config "$work/serve.toml" --summary-json "$work/summary.json" >"$work/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 600); do grep -q "serve \[info\]: serving" "$work/serve.log" && break; sleep 0.1; done
  "$feed" --data "$work/syn.cap" --dest "239.0.0.7:$feed_port" --rate 50000 >"$work/feed.out" 2>&1 ||
    fail "tickinfer-feed (multicast) failed"
  sleep 0.5
  kill -TERM "$serve_pid"
  wait "$serve_pid" || fail "the daemon exited with status $? on SIGTERM"
  serve_pid=
  "$(command -v python3)" - "$work/summary.json" <<'ENDPY'
import json, sys
s = json.load(open(sys.argv[1]))
if s["ok"] != 20000 or s["gaps"] != 0:
    sys.exit(f"serve_e2e: multicast run: {s}")
ENDPY
  multicast=20000
fi

echo "serve_e2e: 20000 events predicted as tickinfer-replay predicts them; injected faults counted exactly ($expect);"\
  "a subscriber that does not read was dropped; multicast: $multicast"
