#!/usr/bin/env bash
# Train while the daemon serves: train_model.py --checkpoint-dir writes an epoch every few seconds into the directory
# tickinfer-serve watches (model.dir), while tickinfer-feed sends a paced feed over UDP and a client POSTs KServe
# inference requests. Each epoch goes live (the records say which version predicted them, in order), no event and
# no request is lost or fails. Usage: serve_hot_swap.sh REPLAY FEED SERVE PYTHON SOURCE_DIR (env SERVE_MODE:
# pipeline.mode, default batched)
set -euo pipefail
replay=$1 feed=$2 serve=$3 python=$4 src=$5
work=$(mktemp -d "${TMPDIR:-/tmp}/tickinfer_serve_swap.XXXXXX")
logs="serve.log sub.log train.out http.out"
source "$(dirname "$0")/serve_lib.sh"

"$replay" --events 20000 --dump-features "$work/features.csv" >/dev/null
"$replay" --events 80000 --symbols 4 --write-capture "$work/feed.cap" >/dev/null
mkdir "$work/checkpoints"
"$python" "$src/scripts/train_model.py" --features "$work/features.csv" --config "$src/configs/default.toml" \
  --checkpoint-dir "$work/checkpoints" --epochs 4 --epoch-pause 4 --name synth_mlp >"$work/train.out" 2>&1 &
train_pid=$!
pids+=("$train_pid")
epoch1_or_gone() { [[ -f $work/checkpoints/synth_mlp_epoch1.pt.sha256 ]] || ! kill -0 "$train_pid" 2>/dev/null; }
wait_for 120 epoch1_or_gone && [[ -f $work/checkpoints/synth_mlp_epoch1.pt.sha256 ]] || fail "no epoch 1 checkpoint"

feed_port=$(free_port) tcp_port=$(free_port) http_port=$(free_port)
cat >"$work/serve.toml" <<ENDTOML
[model]
dir = "$work/checkpoints"
[features]
config = "$src/configs/default.toml"
[pipeline]
keys = 16
mode = "${SERVE_MODE:-batched}"
[feed]
listen = "127.0.0.1:$feed_port"
format = "capture"
[predictions]
tcp = "127.0.0.1:$tcp_port"
[http]
listen = "127.0.0.1:$http_port"
ENDTOML
start_daemon "$work/serve.toml"
"$serve" subscribe --tcp "127.0.0.1:$tcp_port" --csv "$work/got.csv" --count 80000 --timeout 120 >"$work/sub.log" 2>&1 &
sub_pid=$!
pids+=("$sub_pid")
wait_for 30 grep -q "subscriber .* connected" "$work/serve.log" || fail "the subscriber did not connect"

# 80000 events at 5000/s: 16 s, while epochs 2 to 4 arrive (one every 4 s: at least two go live during the feed
# even if the daemon took 8 s to start); HTTP inference alongside, one request every 20 ms.
"$feed" --data "$work/feed.cap" --dest "127.0.0.1:$feed_port" --rate 5000 >"$work/feed.out" 2>&1 &
feed_pid=$!
pids+=("$feed_pid")
"$python" - "$http_port" "$feed_pid" >"$work/http.out" 2>&1 <<'ENDPY' &
import http.client, json, os, sys, time
port, feed = int(sys.argv[1]), int(sys.argv[2])
body = json.dumps({"inputs": [{"name": "features", "shape": [2, 11], "datatype": "FP32", "data": [0.25] * 22}]})
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # keep-alive
codes, versions = {}, []
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
while alive(feed):
    conn.request("POST", "/v2/models/synth_mlp/infer", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    text = r.read()
    codes[r.status] = codes.get(r.status, 0) + 1
    if r.status == 200:
        versions.append(int(json.loads(text)["model_version"]))
    else:
        print("answer", r.status, text[:200])
    time.sleep(0.02)
print(json.dumps({"codes": codes, "versions": sorted(set(versions)), "ordered": versions == sorted(versions)}))
ENDPY
http_pid=$!
pids+=("$http_pid")
wait "$feed_pid" || fail "tickinfer-feed failed"
wait "$http_pid" || fail "the HTTP client failed"
wait "$train_pid" || fail "training failed"
wait "$sub_pid" || fail "the subscriber did not get 80000 records"
# SIGHUP re-reads the directory (the registry sees epoch 4 again and keeps it); the daemon serves on.
kill -HUP "$serve_pid"
wait_for 30 grep -q "SIGHUP: re-reading $work/checkpoints" "$work/serve.log" || fail "SIGHUP was not taken"
kill -0 "$serve_pid" || fail "the daemon did not survive SIGHUP"
stop_daemon
pids=()

"$python" - "$work/summary.json" "$work/sub.log" "$work/http.out" "$work/got.csv" "$work/serve.log" <<'ENDPY'
import csv, json, re, sys
s = json.load(open(sys.argv[1]))
sub = open(sys.argv[2]).read()
http = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1])
rows = list(csv.reader(open(sys.argv[4])))[1:]
log = open(sys.argv[5]).read()
problems = []
if s["events"] != 80000 or s["ok"] < 80000 or s["records"] != 80000 or s["gaps"] != 0:
    problems.append(f"daemon counts {s}")
if len(rows) != 80000 or any(r[2] != "ok" for r in rows):
    problems.append(f"{len(rows)} records, {sum(r[2] != 'ok' for r in rows)} not ok")
by_version = dict(map(int, p.split(":")) for p in re.search(r"by model version: (.*)", sub).group(1).split())
if len(by_version) < 2 or max(by_version) != 4:
    problems.append(f"records by version {by_version}: the epochs did not go live during the feed")
if set(http["codes"]) != {"200"} or not http["ordered"]:
    problems.append(f"HTTP {http}")
for v in (2, 3, 4):
    if not re.search(rf"published .*synth_mlp_epoch{v}\.pt \(version {v}", log):
        problems.append(f"epoch {v} not published")
if problems:
    sys.exit("serve_hot_swap: " + "; ".join(problems))
print(f"serve_hot_swap: 80000 events and {sum(http['codes'].values())} HTTP requests, all predicted; "
      f"records by version {by_version}, HTTP versions {http['versions']}")
ENDPY
