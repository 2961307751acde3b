#!/usr/bin/env bash
# A GRU trained on the replay's own features (train_model.py --arch gru) replays with its state kept per symbol:
# the export carries state_names and packed golden rows the loader checks, and every event of four symbols is
# predicted. Usage: train_gru.sh REPLAY PYTHON SOURCE_DIR
set -euo pipefail
replay=$1 python=$2 src=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/tickinfer_train_gru.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$replay" --events 20000 --dump-features "$work/features.csv" >/dev/null
"$python" "$src/scripts/train_model.py" --features "$work/features.csv" --config "$src/configs/default.toml" \
  --arch gru --hidden 8 --epochs 1 --out "$work/gru.pt" --name synth_gru >"$work/train.out" 2>&1 ||
  { cat "$work/train.out" >&2; exit 1; }
"$replay" --model "$work/gru.pt" --events 4000 --symbols 4 --bursts 0.01 --quiet --json "$work/report.json" \
  >"$work/replay.out" 2>&1 || { cat "$work/replay.out" >&2; exit 1; }
"$python" - "$work/report.json" <<'ENDPY'
import json, sys
r = json.load(open(sys.argv[1]))
problems = []
if r["counts"]["ok"] != 4000 or r["events"] != 4000:
    problems.append(f"events {r['events']}, ok {r['counts']['ok']}: every event must be predicted")
if r["model"]["engine"] != "libtorch" or "sequence model" not in r["model"]["engine_note"]:
    problems.append(f"engine {r['model']['engine']}: {r['model']['engine_note']}")
if r["pipeline_config"]["keys"] != 4 or len(r["symbols"]) != 4:
    problems.append(f"keys {r['pipeline_config']['keys']}, symbols {len(r['symbols'])}: one state per symbol")
if sum(s["ok"] for s in r["symbols"]) != 4000:
    problems.append("per-symbol Ok counts do not add up")
if problems:
    sys.exit("train_gru: " + "; ".join(problems))
print("train_gru: a trained GRU replayed 4000 events of 4 symbols, state per symbol")
ENDPY
