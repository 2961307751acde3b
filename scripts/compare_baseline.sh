#!/usr/bin/env bash
# tickinfer-replay vs. the Python peer (scripts/baseline_replay.py) on the same LOBSTER file and model:
#   1. tickinfer as fast as possible, pipeline (predictions kept)            -> throughput
#   2. Python as fast as possible: same features, the model called per event -> throughput, predictions
#   3. latency, like with like: both sides paced as recorded x 100 over the first PACED_EVENTS events, each
#      event's latency from its scheduled arrival to its prediction (time spent behind counts): tickinfer in
#      direct mode (the feed thread predicts inline, native engine), tickinfer through the pipeline, Python;
#      and unpaced, from the line read to the prediction, tickinfer direct vs Python
# then checks that the predictions agree within 1e-4 and prints the ratios. Exits 1 if they disagree.
#
# Usage: scripts/compare_baseline.sh [MESSAGE.csv] [MODEL.pt]
#   defaults: the LOBSTER AMZN sample in ../shared/data and the bundled build/models/replay_mlp.pt.
# Environment: TICKINFER_BUILD (build dir, default build), PACED_EVENTS (default 5000), LIMIT (0 = all), PIN,
#   RUNS (throughput runs of each side, default 5 / 3 for Python; the medians are compared: the AMZN file
#   takes tickinfer well under a second, so one scheduler hiccup on a shared machine moves a single run).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${TICKINFER_BUILD:-build}
data=${1:-$root/../shared/data/lobster-amzn-l1/AMZN_2012-06-21_34200000_57600000_message_1.csv}
model=${2:-$build/models/replay_mlp.pt}
paced_events=${PACED_EVENTS:-5000}
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

echo "== tickinfer-replay, as fast as possible, pipeline ($runs runs; the first one's summary)"
"${replay[@]}" --limit "$limit" --predictions "$out/tickinfer_predictions.csv" --json "$out/tickinfer_1.json"
for ((k = 2; k <= runs; k++)); do
  "${replay[@]}" --limit "$limit" --predictions "$out/tickinfer_predictions_$k.csv" --json "$out/tickinfer_$k.json" >/dev/null
  cmp -s "$out/tickinfer_predictions.csv" "$out/tickinfer_predictions_$k.csv" ||
    { echo "compare_baseline: run $k's predictions differ from run 1's"; exit 1; }
  rm "$out/tickinfer_predictions_$k.csv"
done
echo
echo "== Python peer, as fast as possible ($py_runs runs)"
for ((k = 1; k <= py_runs; k++)); do
  "$python" scripts/baseline_replay.py "$data" --model "$model" --limit "$limit" \
    --predictions "$out/python_predictions.csv" --json "$out/python_$k.json"
done
echo
echo "== latency, both sides paced as recorded x 100, first $paced_events events (scheduled arrival -> prediction)"
"${replay[@]}" --limit "$paced_events" --speed 100 --direct --predictions "$out/tickinfer_direct_paced.csv" \
  --json "$out/tickinfer_direct_paced.json"
echo
"${replay[@]}" --limit "$paced_events" --speed 100 --json "$out/tickinfer_paced.json"
echo
"$python" scripts/baseline_replay.py "$data" --model "$model" --limit "$paced_events" --speed 100 \
  --json "$out/python_paced.json"
echo
echo "== per-event work, unpaced (line read -> prediction), first $paced_events events"
"${replay[@]}" --limit "$paced_events" --direct --json "$out/tickinfer_direct.json" | grep "end to end"
"$python" scripts/baseline_replay.py "$data" --model "$model" --limit "$paced_events" --json "$out/python_unpaced.json"
echo

"$python" - "$out" "$runs" "$py_runs" <<'EOF'
import csv, json, statistics, sys
out, runs, py_runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
load = lambda name: json.load(open(f"{out}/{name}.json"))
fast_runs = [load(f"tickinfer_{k}") for k in range(1, runs + 1)]
py_runs_ = [load(f"python_{k}") for k in range(1, py_runs + 1)]
print("tickinfer events/s per run:", ", ".join(f"{r['throughput']['events_per_s']:,.0f}" for r in fast_runs))
print("python events/s per run:   ", ", ".join(f"{r['events_per_s']:,.0f}" for r in py_runs_))


def predictions(path):
    with open(path) as f:
        return {int(row["index"]): (row["ts_ns"], row["status"], [float(row[k]) for k in row if k.startswith(("y", "mid"))])
                for row in csv.DictReader(f)}


def compare(ours, theirs):
    worst, compared, bad = 0.0, 0, 0
    for i, (ts, status, values) in theirs.items():
        if i not in ours:
            bad += 1
            continue
        o_ts, o_status, o_values = ours[i]
        bad += o_ts != ts or o_status != "ok"
        worst = max([worst] + [abs(a - b) for a, b in zip(o_values, values)])
        compared += 1
    return worst, compared, bad


py_pred = predictions(f"{out}/python_predictions.csv")
worst, compared, bad = compare(predictions(f"{out}/tickinfer_predictions.csv"), py_pred)
agree = worst <= 1e-4 and bad == 0 and compared == len(py_pred)
direct, piped, py = load("tickinfer_direct_paced"), load("tickinfer_paced"), load("python_paced")
d_worst, d_compared, d_bad = compare(predictions(f"{out}/tickinfer_direct_paced.csv"),
                                     {i: v for i, v in py_pred.items() if i < direct["events"]})
d_agree = d_worst <= 1e-4 and d_bad == 0 and d_compared == direct["events"]
print(f"predictions: pipeline {compared} events compared, max |tickinfer - python| = {worst:.3g}; direct mode "
      f"{d_compared} compared, max {d_worst:.3g} ({'agree within 1e-4' if agree and d_agree else 'DISAGREE'})")
t = statistics.median(r["throughput"]["events_per_s"] for r in fast_runs)
p = statistics.median(r["events_per_s"] for r in py_runs_)
print(f"throughput (medians): tickinfer {t:,.0f} events/s vs python {p:,.0f} events/s: {t / p:.1f}x")

dl, pl, yl = direct["latency_ns"]["end_to_end"], piped["latency_ns"]["end_to_end"], py["latency_ns"]
print(f"latency, paced x100, scheduled arrival -> prediction, us ({direct['events']} events each side):")
print(f"  {'':6} {'tickinfer direct':>17} {'tickinfer pipeline':>19} {'python':>12} {'python / direct':>16}")
ratios = {}
for q, name in (("p50_ns", "p50"), ("p99_ns", "p99"), ("p999_ns", "p99.9"), ("max_ns", "max")):
    ratios[name] = yl[q] / max(dl[q], 1)
    print(f"  {name:6} {dl[q] / 1e3:17.2f} {pl[q] / 1e3:19.2f} {yl[q] / 1e3:12.1f} {ratios[name]:15.0f}x")
met = all(ratios[n] >= 20 for n in ("p50", "p99", "p99.9"))
print(f"  target: direct mode wins p50, p99 and p99.9 by >= 20x: {'met' if met else 'MISSED'}")
ud, up = load("tickinfer_direct")["latency_ns"]["end_to_end"], load("python_unpaced")["latency_ns"]
print(f"per-event work, unpaced, line read -> prediction, us: tickinfer direct p50 {ud['p50_ns'] / 1e3:.2f} "
      f"p99 {ud['p99_ns'] / 1e3:.2f} vs python p50 {up['p50_ns'] / 1e3:.1f} p99 {up['p99_ns'] / 1e3:.1f}: "
      f"{up['p50_ns'] / max(ud['p50_ns'], 1):.0f}x at p50")
json.dump({"events_compared": compared, "max_abs_diff": worst, "direct_max_abs_diff": d_worst,
           "agree_within_1e-4": agree and d_agree, "tickinfer_events_per_s": t, "python_events_per_s": p,
           "throughput_ratio": t / p, "paced_speed": 100, "paced_events": direct["events"],
           "latency_ratio_python_over_direct": ratios, "latency_target_20x_met": met,
           "tickinfer_direct_paced_ns": dl, "tickinfer_pipeline_paced_ns": pl, "python_paced_ns": yl},
          open(f"{out}/comparison.json", "w"), indent=2)
print(f"reports: {out}/{{tickinfer_N,tickinfer_direct_paced,tickinfer_paced,python_N,python_paced,comparison}}.json")
sys.exit(0 if agree and d_agree else 1)
EOF
