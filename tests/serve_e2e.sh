#!/usr/bin/env bash
# tickinfer-feed -> tickinfer-serve -> a TCP prediction subscriber, on loopback: the daemon's predictions equal
# tickinfer-replay --predictions on the same data and model byte for byte (batches of 1 on both sides), gap,
# duplicate and corrupt-packet injection is counted exactly while the rest is still predicted, a subscriber that does
# not read is dropped without slowing anything, multicast in (where the host routes it), hostile datagrams are counted
# and skipped, and bad configs are refused naming the file and line. Usage: serve_e2e.sh REPLAY FEED SERVE SOURCE_DIR
set -euo pipefail
replay=$1 feed=$2 serve=$3 src=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/tickinfer_serve_e2e.XXXXXX")
source "$(dirname "$0")/serve_lib.sh"
py=$(command -v python3)
model=$(dirname "$replay")/../models/replay_mlp.pt  # the build tree's bundled model
[[ -f $model ]] || fail "no bundled model at $model"

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
refused "tickinfer-serve: $src/configs/serve.toml: pipeline.mode = \"direct\" runs the native engine: model.engine must be auto or native" \
  --config "$src/configs/serve.toml" --set pipeline.mode='"direct"' --set model.engine='"libtorch"'
refused "tickinfer-serve: --set 'feed.core=-2': feed.core: -2 is out of range [-1, 4095]" \
  --config "$src/configs/serve.toml" --set feed.core=-2

"$replay" --events 20000 --symbols 8 --write-capture "$work/syn.cap" >/dev/null

# The daemon's config for these runs: the bundled model over capture records on FEED_PORT, then extra lines for
# [pipeline] ($2), [feed] ($3) and [predictions] ($4).
write_config() {
  local predictions=${4:-'tcp = ""'}
  cat >"$work/serve.toml" <<ENDTOML
[model]
path = "$model"
[features]
config = "$src/configs/default.toml"
[pipeline]
keys = 64
$2
[feed]
listen = "127.0.0.1:$1"
format = "capture"
$3
[predictions]
$predictions
[http]
listen = ""
ENDTOML
}

# One run with a subscriber: start, subscribe, feed (extra tickinfer-feed options in $3...), stop, and check the
# summary against "key=value" pairs in $1; the subscriber must get $2 records.
run() {
  local expect=$1 count=$2 feed_port tcp_port
  shift 2
  feed_port=$(free_port) tcp_port=$(free_port)
  write_config "$feed_port" "max_batch = 1" "" "tcp = \"127.0.0.1:$tcp_port\""
  rm -f "$work/got.csv" "$work/got.csv.connected"
  start_daemon "$work/serve.toml"
  "$serve" subscribe --tcp "127.0.0.1:$tcp_port" --csv "$work/got.csv" --count "$count" --timeout 60 \
    >"$work/sub.log" 2>&1 &
  sub_pid=$!
  wait_for 30 grep -q "subscriber .* connected" "$work/serve.log" || fail "the subscriber did not connect"
  # A modest rate: the kernel's socket buffers never overflow on a loaded machine (loss would be a gap).
  "$feed" --data "$work/syn.cap" --dest "127.0.0.1:$feed_port" --rate 50000 "$@" >"$work/feed.out" 2>&1 ||
    fail "tickinfer-feed failed"
  wait "$sub_pid" || fail "the subscriber did not get $count records"
  sub_pid=
  stop_daemon
  expect_summary "$expect" || fail "the daemon's counts"
}

# 1. Every event predicted, and the predictions are tickinfer-replay's.
run "messages=20000 events=20000 submitted=20000 ok=20000 records=20000 gaps=0 malformed_packets=0" 20000
"$replay" "$work/syn.cap" --symbol '*' --predictions "$work/want.csv" --max-batch 1 --quiet --json "$work/replay.json" \
  >/dev/null
cmp "$work/want.csv" "$work/got.csv" || fail "the daemon's predictions differ from tickinfer-replay's"

# 1b. Direct mode (the feed thread runs the native engine and sends the UDP records itself; the output thread serves
#     TCP): the same predictions, byte for byte, by UDP and by TCP.
feed_port=$(free_port) tcp_port=$(free_port) udp_port=$(free_port)
write_config "$feed_port" 'mode = "direct"' "" "tcp = \"127.0.0.1:$tcp_port\"
udp = \"127.0.0.1:$udp_port\""
rm -f "$work"/got*.csv*
start_daemon "$work/serve.toml"
grep -q "(native, direct) on feed" "$work/serve.log" || fail "the daemon did not say it serves in direct mode"
"$serve" subscribe --udp "127.0.0.1:$udp_port" --csv "$work/got_udp.csv" --count 20000 --timeout 60 \
  >"$work/sub_udp.log" 2>&1 &
udp_pid=$!
"$serve" subscribe --tcp "127.0.0.1:$tcp_port" --csv "$work/got_tcp.csv" --count 20000 --timeout 60 \
  >"$work/sub.log" 2>&1 &
sub_pid=$!
wait_for 30 grep -q "subscriber .* connected" "$work/serve.log" || fail "the subscriber did not connect (direct)"
wait_for 30 test -f "$work/got_udp.csv.connected" || fail "the UDP subscriber did not bind"
"$feed" --data "$work/syn.cap" --dest "127.0.0.1:$feed_port" --rate 50000 >"$work/feed.out" 2>&1 ||
  fail "tickinfer-feed failed (direct)"
wait "$sub_pid" || fail "the TCP subscriber did not get 20000 records (direct)"
sub_pid=
wait "$udp_pid" || fail "the UDP subscriber did not get 20000 records (direct): $(cat "$work/sub_udp.log")"
udp_pid=
stop_daemon
expect_summary "messages=20000 events=20000 submitted=20000 ok=20000 records=20000 gaps=0 udp_datagrams=20000" ||
  fail "the daemon's counts (direct)"
cmp "$work/want.csv" "$work/got_udp.csv" || fail "direct mode: the UDP records differ from tickinfer-replay's"
cmp "$work/want.csv" "$work/got_tcp.csv" || fail "direct mode: the TCP records differ from tickinfer-replay's"

# 2. One message per packet; every 100th packet dropped, every 50th sent twice, every 70th corrupted (refused whole:
#    a gap for its messages). tickinfer-feed says what a receiver must count; the daemon must count exactly that and
#    predict every message that arrived.
inject=(--max-messages-per-packet 1 --gap-every 100 --duplicate-every 50 --corrupt-every 70)
"$feed" --data "$work/syn.cap" --dest 127.0.0.1:9 "${inject[@]}" --json "$work/expected.json" >/dev/null
expect=$("$py" - "$work/expected.json" <<'ENDPY'
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
run "$expect" "$count" "${inject[@]}"

# 3. A subscriber that never reads (a 4 KiB receive buffer) is dropped once the daemon's bound is behind it
#    (tcp_buffer_bytes, and the same in the kernel's send buffer); the daemon keeps predicting every event.
feed_port=$(free_port) tcp_port=$(free_port)
write_config "$feed_port" "" "" "tcp = \"127.0.0.1:$tcp_port\"
tcp_buffer_bytes = 65536"
start_daemon "$work/serve.toml"
"$py" -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
time.sleep(60)' "$tcp_port" &
sub_pid=$!
wait_for 30 grep -q "subscriber .* connected" "$work/serve.log" || fail "the slow subscriber did not connect"
"$feed" --data "$work/syn.cap" --dest "127.0.0.1:$feed_port" --rate 50000 >"$work/feed.out" 2>&1 ||
  fail "tickinfer-feed failed"
wait_for 30 grep -q "output: subscriber 127.0.0.1:[0-9]* dropped: .* bytes behind" "$work/serve.log" ||
  fail "the slow subscriber was not dropped"
stop_daemon
kill "$sub_pid" 2>/dev/null || true
sub_pid=
expect_summary "subscribers_dropped=1 ok=20000 records=20000" || fail "the slow subscriber run"

# 4. Multicast in, where this host routes loopback multicast (a probe decides; containers may not): the daemon joins
#    the group and predicts every event the sender multicasts.
multicast=skipped
if "$py" - <<'ENDPY'
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
  write_config "$feed_port" "" 'group = "239.0.0.7"' ""
  start_daemon "$work/serve.toml"
  "$feed" --data "$work/syn.cap" --dest "239.0.0.7:$feed_port" --rate 50000 >"$work/feed.out" 2>&1 ||
    fail "tickinfer-feed (multicast) failed"
  stop_daemon
  expect_summary "ok=20000 gaps=0" || fail "the multicast run"
  multicast=20000
fi

# 5. Hostile datagrams straight at the daemon: a capture record whose price could overflow a book (2^60) is refused
#    and counted as a decode failure, a record of the wrong size too, a packet 10^12 sequences ahead is refused
#    (feed.max_gap) and does not make the next packet a duplicate, a datagram that is not MoldUDP64 is counted
#    malformed; the two good add orders are predicted.
feed_port=$(free_port)
write_config "$feed_port" "" "" ""
start_daemon "$work/serve.toml"
"$py" - "$feed_port" <<'ENDPY'
import socket, struct, sys
port = int(sys.argv[1])
def event(price, qty=100, ts=34_200_000_000_000, oid=7):
    # feed::Event, 80 bytes: ts, order_id, new_order_id, price, qty, bid/ask price/qty, symbol, kind, side, aux, flags
    return struct.pack("<qQQqqqqqqIBBBB", ts, oid, 0, price, qty, 0, 0, 0, 0, 0, 1, 1, 0, 0)  # kind 1 add, side 1 buy
def packet(seq, *messages):
    body = b"".join(struct.pack(">H", len(m)) + m for m in messages)
    return b"HOSTILE   " + struct.pack(">QH", seq, len(messages)) + body
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for d in (packet(1, event(1_000_000)), packet(2, event(1 << 60)), packet(3, event(100)[:79]),
          packet(10**12, event(1_000_100, oid=8)), packet(4, event(1_000_200, oid=9)), b"not moldudp64"):
    s.sendto(d, ("127.0.0.1", port))
ENDPY
# One feed thread takes datagrams in order: once the last one is reported, every one before it was handled.
wait_for 10 grep -q "malformed packet skipped" "$work/serve.log" || fail "the malformed datagram was not reported"
stop_daemon
expect_summary "messages=4 decode_failures=2 malformed_packets=1 too_far_ahead_packets=1 events=2 ok=2 gaps=0" ||
  fail "the hostile datagrams"

echo "serve_e2e: 20000 events predicted as tickinfer-replay predicts them; injected faults counted exactly ($expect);" \
  "a subscriber that does not read was dropped; multicast: $multicast"
