#!/usr/bin/env bash
# Train while serving, end to end: train_model.py --checkpoint-dir writes a checkpoint per epoch while
# tickinfer-replay --model-dir serves a paced feed from that directory. Each epoch must go live in order, no
# event may be lost or fail, nothing may be refused. Usage: train_while_serving.sh REPLAY PYTHON SOURCE_DIR
set -euo pipefail
replay=$1 python=$2 src=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/tickinfer_train_serve.XXXXXX")
replay_pid=
cleanup() {
  [[ -n $replay_pid ]] && kill "$replay_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "train_while_serving: $*" >&2
  echo "--- replay output:" >&2
  cat "$work/replay.out" >&2 || true
  exit 1
}

# Training data: the features the replay itself computes (training == inference features by construction).
"$replay" --events 20000 --dump-features "$work/features.csv" >/dev/null
mkdir "$work/checkpoints"

# A paced feed (100 events/s: the feed thread mostly sleeps) that would last an hour: it is stopped below.
"$replay" --events 360000 --rate 100 --speed 1 --model-dir "$work/checkpoints" --wait-for-model 300 --quiet \
  --json "$work/report.json" >"$work/replay.out" 2>&1 &
replay_pid=$!

"$python" "$src/scripts/train_model.py" --features "$work/features.csv" --config "$src/configs/default.toml" \
  --checkpoint-dir "$work/checkpoints" --epochs 3 --epoch-pause 2 --name synth_mlp >"$work/train.out" 2>&1 ||
  { cat "$work/train.out" >&2; fail "training failed"; }
for epoch in 1 2 3; do
  [[ -f $work/checkpoints/synth_mlp_epoch$epoch.pt && -f $work/checkpoints/synth_mlp_epoch$epoch.pt.sha256 ]] ||
    fail "no checkpoint + sidecar for epoch $epoch"
done
ls "$work/checkpoints" | grep -q '\.tmp$' && fail "a temporary file was left behind"

# Wait (bounded) until the replay has published the last epoch, let it predict on it, then stop it (SIGINT: it
# finishes what it accepted and writes its report).
for _ in $(seq 600); do
  grep -q "published .*synth_mlp_epoch3.pt (version 3" "$work/replay.out" && break
  kill -0 "$replay_pid" 2>/dev/null || fail "the replay ended before epoch 3 went live"
  sleep 0.1
done
grep -q "published .*synth_mlp_epoch3.pt (version 3" "$work/replay.out" || fail "epoch 3 never went live"
sleep 2
kill -INT "$replay_pid"
wait "$replay_pid" || fail "the replay exited with status $?"
replay_pid=

"$python" - "$work/report.json" <<'ENDPY'
import json, sys
r = json.load(open(sys.argv[1]))
c, d = r["counts"], r["model_dir"]
problems = []
if not r["stopped_by_signal"]:
    problems.append("the replay was not stopped by the signal")
if r["events"] < 100 or c["accepted"] != r["events"] or c["ok"] != r["events"]:
    problems.append(f"events {r['events']}, accepted {c['accepted']}, ok {c['ok']}: every event must be predicted")
# The replay starts on the newest checkpoint it finds (epoch 1, unless a loaded machine made it late), then every
# later epoch goes live in order: at least one swap seen by predictions.
v = r["model_versions"]
if len(v) < 2 or v != list(range(v[0], 4)):
    problems.append(f"versions that predicted: {v}, expected consecutive versions ending at 3, at least two")
if d["swaps"] != len(v) - 1 or d["refused"] != 0 or d["served_version_at_end"] != 3:
    problems.append(f"registry: {d}")
if problems:
    sys.exit("train_while_serving: " + "; ".join(problems))
print(f"train_while_serving: {r['events']} events, all predicted; versions {r['model_versions']} went live in order")
ENDPY
