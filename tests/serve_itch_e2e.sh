#!/usr/bin/env bash
# ITCH 5.0 order flow over MoldUDP64 on loopback: a synthetic ITCH day (tests/support/synthetic_itch.cpp: directory,
# adds, cancels, deletes, executions, trades of 8 stocks) sent by tickinfer-feed into tickinfer-serve (feed.format
# itch), in batched and in direct mode; the TCP subscriber's predictions equal tickinfer-replay --predictions on the
# same file byte for byte. Usage: serve_itch_e2e.sh REPLAY FEED SERVE SYNTHETIC_ITCH SOURCE_DIR
set -euo pipefail
replay=$1 feed=$2 serve=$3 synthetic=$4 src=$5
work=$(mktemp -d "${TMPDIR:-/tmp}/tickinfer_serve_itch.XXXXXX")
source "$(dirname "$0")/serve_lib.sh"
model=$(dirname "$replay")/../models/replay_mlp.pt
[[ -f $model ]] || fail "no bundled model at $model"

"$synthetic" "$work/day.itch" 20000 8 || fail "synthetic_itch failed"
"$replay" "$work/day.itch" --symbol '*' --predictions "$work/want.csv" --max-batch 1 --quiet --json "$work/replay.json" \
  >/dev/null || fail "tickinfer-replay of the ITCH file failed"
want=$(($(wc -l <"$work/want.csv") - 1))
((want == 20000)) || fail "the replay predicted $want events, expected 20000"

for mode in batched direct; do
  feed_port=$(free_port) tcp_port=$(free_port)
  cat >"$work/serve.toml" <<ENDTOML
[model]
path = "$model"
[features]
config = "$src/configs/default.toml"
[pipeline]
mode = "$mode"
max_batch = 1
keys = 64
[feed]
listen = "127.0.0.1:$feed_port"
format = "itch"
[predictions]
tcp = "127.0.0.1:$tcp_port"
[http]
listen = ""
ENDTOML
  rm -f "$work/got.csv" "$work/got.csv.connected"
  start_daemon "$work/serve.toml"
  "$serve" subscribe --tcp "127.0.0.1:$tcp_port" --csv "$work/got.csv" --count 20000 --timeout 60 >"$work/sub.log" 2>&1 &
  sub_pid=$!
  wait_for 30 grep -q "subscriber .* connected" "$work/serve.log" || fail "the subscriber did not connect ($mode)"
  "$feed" --data "$work/day.itch" --dest "127.0.0.1:$feed_port" --rate 50000 >"$work/feed.out" 2>&1 ||
    fail "tickinfer-feed failed ($mode)"
  wait "$sub_pid" || fail "the subscriber did not get 20000 records ($mode)"
  sub_pid=
  stop_daemon
  # 1 system event + 8 directory messages besides the 20000 book events; none refused.
  expect_summary "messages=20009 events=20000 not_book=9 ok=20000 records=20000 gaps=0 decode_failures=0" ||
    fail "the daemon's counts ($mode)"
  cmp "$work/want.csv" "$work/got.csv" || fail "$mode mode: the daemon's predictions differ from tickinfer-replay's"
done
echo "serve_itch_e2e: 20000 ITCH events of 8 stocks over MoldUDP64 predicted as tickinfer-replay predicts them," \
  "batched and direct"
