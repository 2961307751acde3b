#!/usr/bin/env bash
# tickinfer-replay vs. the Python peer (scripts/baseline_replay.py) on the same LOBSTER file and model:
#   1. tickinfer as fast as possible (predictions kept)   -> throughput
#   2. tickinfer paced, as recorded x 100, first events   -> per-event latency without a backlog
#   3. Python: same features, the model called per event  -> throughput and per-event latency
# then checks that the predictions agree within 1e-4 and prints the ratios. Exits 1 if they disagree.
#
# Usage: scripts/compare_baseline.sh [MESSAGE.csv] [MODEL.pt]
#   defaults: the LOBSTER AMZN sample in ../shared/data and the bundled build/models/replay_mlp.pt.
# Environment: TICKINFER_BUILD (build dir, default build), PACED_EVENTS (default 2000), LIMIT (0 = all), PIN,
#   RUNS (throughput runs of each side, default 5 / 3 for Python; the medians are compared: the AMZN file
#   takes tickinfer well under a second, so one scheduler hiccup on a shared machine moves a single run).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${TICKINFER_BUILD:-build}
data=${1:-$root/../shared/data/lobster-amzn-l1/AMZN_2012-06-21_34200000_57600000_message_1.csv}
model=${2:-$build/models/replay_mlp.pt}
paced_events=${PACED_EVENTS:-2000}
limit=${LIMIT:-0}
runs=${RUNS:-5}
py_runs=$(( runs < 3 ? runs : 3 ))

python=""
for candidate in ${TICKINFER_PYTHON:-} /usr/bin/python3 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c "import torch" 2>/dev/null; then python=$candidate; break; fi
done
[[ -n $python ]] || { echo "compare_baseline: no Python with torch (set TICKINFER_PYTHON)"; exit 1; }
[[ -f $data ]] || { echo "compare_baseline: no data file $data"; exit 1; }

if [[ ! -x $build/apps/tickinfer-replay || ! -f $build/models/replay_mlp.pt ]]; then
  scripts/install-deps.sh >/dev/null
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
  cmake --build "$build" -j "${TICKINFER_JOBS:-$(nproc)}" --target tickinfer-replay tickinfer_models >/dev/null
fi

out=$build/compare
mkdir -p "$out"
# PIN=1 pins the feed thread and the worker to cores 0 and 1: right on a dedicated machine, harmful on a
# shared one (a pinned spinning thread cannot move away from another process's work).
pin=()
if [[ ${PIN:-0} == 1 ]] && (($(nproc) >= 2)); then pin=(--feed-core 0 --worker-core 1); fi
replay=("$build/apps/tickinfer-replay" "$data" --model "$model" --quiet "${pin[@]}")

echo "== tickinfer-replay, as fast as possible ($runs runs; the first one's summary)"
"${replay[@]}" --limit "$limit" --predictions "$out/tickinfer_predictions.csv" --json "$out/tickinfer_1.json"
for ((k = 2; k <= runs; k++)); do
  "${replay[@]}" --limit "$limit" --predictions "$out/tickinfer_predictions_$k.csv" --json "$out/tickinfer_$k.json" >/dev/null
  cmp -s "$out/tickinfer_predictions.csv" "$out/tickinfer_predictions_$k.csv" ||
    { echo "compare_baseline: run $k's predictions differ from run 1's"; exit 1; }
  rm "$out/tickinfer_predictions_$k.csv"
done
echo
echo "== tickinfer-replay, as recorded x 100, first $paced_events events"
"${replay[@]}" --limit "$paced_events" --speed 100 --json "$out/tickinfer_paced.json"
echo
echo "== Python peer (baseline_replay.py, $py_runs runs)"
for ((k = 1; k <= py_runs; k++)); do
  "$python" scripts/baseline_replay.py "$data" --model "$model" --limit "$limit" \
    --predictions "$out/python_predictions.csv" --json "$out/python_$k.json"
done
echo

"$python" - "$out" "$runs" "$py_runs" <<'EOF'
import csv, json, statistics, sys
out, runs, py_runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fast_runs = [json.load(open(f"{out}/tickinfer_{k}.json")) for k in range(1, runs + 1)]
py_runs_ = [json.load(open(f"{out}/python_{k}.json")) for k in range(1, py_runs + 1)]
paced = json.load(open(f"{out}/tickinfer_paced.json"))
fast = {"throughput": {"events_per_s": statistics.median(r["throughput"]["events_per_s"] for r in fast_runs)}}
py = dict(py_runs_[0], events_per_s=statistics.median(r["events_per_s"] for r in py_runs_))
print("tickinfer events/s per run:", ", ".join(f"{r['throughput']['events_per_s']:,.0f}" for r in fast_runs))
print("python events/s per run:   ", ", ".join(f"{r['events_per_s']:,.0f}" for r in py_runs_))
ours = {}
with open(f"{out}/tickinfer_predictions.csv") as f:
    for row in csv.DictReader(f):
        ours[int(row["index"])] = (row["ts_ns"], row["status"], [float(row[k]) for k in row if k.startswith(("y", "mid"))])
worst, compared, mismatched_ts = 0.0, 0, 0
with open(f"{out}/python_predictions.csv") as f:
    for row in csv.DictReader(f):
        ts, status, values = ours[int(row["index"])]
        mismatched_ts += ts != row["ts_ns"] or status != "ok"
        theirs = [float(row[k]) for k in row if k.startswith(("y", "mid"))]
        worst = max([worst] + [abs(a - b) for a, b in zip(values, theirs)])
        compared += 1
agree = worst <= 1e-4 and mismatched_ts == 0 and compared == len(ours)
t, p = fast["throughput"]["events_per_s"], py["events_per_s"]
tl, pl = paced["latency_ns"]["end_to_end"], py["latency_ns"]
print(f"predictions: {compared} events compared, max |tickinfer - python| = {worst:.3g} "
      f"({'agree within 1e-4' if agree else 'DISAGREE'})")
print(f"throughput (medians): tickinfer {t:,.0f} events/s vs python {p:,.0f} events/s: {t / p:.1f}x")
for q in ("p50_ns", "p99_ns", "p999_ns"):
    print(f"latency {q[:-3]}: tickinfer (paced x100, read -> prediction) {tl[q] / 1e3:.1f} us vs python "
          f"(read -> prediction, unpaced) {pl[q] / 1e3:.1f} us: python / tickinfer = {pl[q] / max(tl[q], 1):.2f}")
json.dump({"events_compared": compared, "max_abs_diff": worst, "agree_within_1e-4": agree,
           "tickinfer_events_per_s": t, "python_events_per_s": p, "throughput_ratio": t / p,
           "latency_ratio_p50": pl["p50_ns"] / max(tl["p50_ns"], 1), "latency_ratio_p99": pl["p99_ns"] / max(tl["p99_ns"], 1)},
          open(f"{out}/comparison.json", "w"), indent=2)
print(f"reports: {out}/{{tickinfer_N,tickinfer_paced,python_N,comparison}}.json")
sys.exit(0 if agree else 1)
EOF
