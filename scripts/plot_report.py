#!/usr/bin/env python3
"""Turns a tickinfer-replay JSON report into PNG plots.

  plot_report.py REPORT.json [--out-dir DIR]     (default: next to the report)

Writes REPORT_latency.png (end-to-end latency distribution, with p50/p90/p99/p99.9), REPORT_throughput.png
(events/s and predictions/s per interval, from the report's throughput series), REPORT_stages.png
(per-stage p50/p99) and REPORT_batches.png (batch-size histogram); for a `tickinfer-replay --sweep` report,
REPORT_sweep.png (latency percentiles against the offered rate, with capacity and the p99 target). Needs matplotlib (Debian:
python3-matplotlib); when this interpreter lacks it, the script re-runs itself under one that has it.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return
    except ImportError:
        pass
    # The python3 first on PATH may not be Debian's, which is where python3-matplotlib installs.
    if os.environ.get("TICKINFER_PLOT_REEXEC"):
        sys.exit("plot_report.py: no Python with matplotlib found (apt-get install python3-matplotlib)")
    for candidate in (os.environ.get("TICKINFER_PYTHON"), "/usr/bin/python3", shutil.which("python3")):
        if not candidate or not os.path.exists(candidate) or os.path.realpath(candidate) == os.path.realpath(sys.executable):
            continue
        if subprocess.run([candidate, "-c", "import matplotlib"], capture_output=True).returncode == 0:
            os.execve(candidate, [candidate, os.path.abspath(__file__)] + sys.argv[1:],
                      {**os.environ, "TICKINFER_PLOT_REEXEC": "1"})
    sys.exit("plot_report.py: no Python with matplotlib found (apt-get install python3-matplotlib)")


def plot_sweep(plt, r, stem):
    """Latency percentiles (log) against the offered rate; capacity and the p99 target marked."""
    points = r["sweep"]
    fig, ax = plt.subplots(figsize=(9, 5))
    rates = [p["offered_events_per_s"] for p in points]
    for q, color in (("p50_ns", "green"), ("p99_ns", "red"), ("p999_ns", "purple"), ("max_ns", "gray")):
        ax.plot(rates, [max(p[q], 1) / 1e3 for p in points], marker="o", color=color, label=q[:-3])
    ax.axvline(r["capacity"]["events_per_s"], color="black", linestyle=":",
               label=f"capacity {r['capacity']['events_per_s']:,.0f} events/s")
    ax.axhline(r["p99_target_ns"] / 1e3, color="red", linestyle="--", label=f"p99 target {r['p99_target_ns'] / 1e3:g} us")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (events/s, paced; latency from each event's scheduled arrival)")
    ax.set_ylabel("end-to-end latency (us)")
    best = r["max_rate_meeting_p99_target"]
    ax.set_title(f"{r['source']}\n{r['model']['name']} on {r['model']['engine']}, {r['mode']}; highest rate meeting "
                 f"the p99 target: {best:,.0f} events/s", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(stem + "_sweep.png", dpi=110)
    plt.close(fig)
    return stem + "_sweep.png"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", help="JSON report written by tickinfer-replay --json")
    parser.add_argument("--out-dir", help="where to write the PNGs (default: the report's directory)")
    args = parser.parse_args()
    ensure_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(args.report) as f:
        r = json.load(f)
    out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.report))
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, os.path.splitext(os.path.basename(args.report))[0])
    if "sweep" in r:
        print(plot_sweep(plt, r, stem))
        return 0
    pacing = r["pacing"]["mode"].replace("_", " ") + ("" if r["pacing"]["speed"] in (0, 1) else f" x {r['pacing']['speed']:g}")
    title = f"{r['source']['description']}\n{r['events']:,} events, {pacing}"
    written = []

    # Latency distribution: histogram buckets (log-spaced) with the percentiles marked.
    buckets = r["end_to_end_histogram"]["buckets"]
    lat = r["latency_ns"]["end_to_end"]
    fig, ax = plt.subplots(figsize=(9, 5))
    if buckets:
        lows = [b[0] / 1e3 for b in buckets]
        counts = [b[1] for b in buckets]
        total = float(sum(counts))
        widths = [max(lows[i] * 0.02, 1e-3) for i in range(len(lows))]
        ax.bar(lows, [c / total for c in counts], width=widths, align="edge", color="#4477aa")
        ax.set_xscale("log")
        for q, color in (("p50_ns", "green"), ("p90_ns", "orange"), ("p99_ns", "red"), ("p999_ns", "purple")):
            ax.axvline(lat[q] / 1e3, color=color, linestyle="--", label=f"{q[:-3]} {lat[q] / 1e3:.2f} us")
        ax.legend()
    ax.set_xlabel("end-to-end latency, event read -> prediction (us)")
    ax.set_ylabel("fraction of events")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(stem + "_latency.png", dpi=110)
    written.append(stem + "_latency.png")
    plt.close(fig)

    # Throughput over time, from cumulative counts per interval.
    series = r["throughput"]["series"]
    fig, ax = plt.subplots(figsize=(9, 5))
    if len(series) >= 1:
        prev_t, prev_e, prev_p = 0.0, 0, 0
        ts, ev, pr = [], [], []
        for t, e, p in series:
            dt = t - prev_t
            if dt > 0:
                ts.append(t)
                ev.append((e - prev_e) / dt)
                pr.append((p - prev_p) / dt)
            prev_t, prev_e, prev_p = t, e, p
        ax.plot(ts, ev, label="events ingested / s", marker=".")
        ax.plot(ts, pr, label="predictions / s", marker=".")
        ax.legend()
    ax.set_xlabel("time since the replay started (s)")
    ax.set_ylabel("per second")
    ax.set_title(title + f"\noverall {r['throughput']['events_per_s']:,.0f} events/s, "
                 f"{r['throughput']['inferences_per_s']:,.0f} inferences/s", fontsize=9)
    fig.tight_layout()
    fig.savefig(stem + "_throughput.png", dpi=110)
    written.append(stem + "_throughput.png")
    plt.close(fig)

    # Per-stage p50 / p99.
    stages = (["feed_stage", "predict", "end_to_end"] if r.get("mode") == "direct"
              else ["feed_stage", "queue_wait", "batch_formation", "forward", "end_to_end"])
    fig, ax = plt.subplots(figsize=(9, 5))
    xs = range(len(stages))
    p50 = [r["latency_ns"][s]["p50_ns"] / 1e3 for s in stages]
    p99 = [r["latency_ns"][s]["p99_ns"] / 1e3 for s in stages]
    ax.bar([x - 0.2 for x in xs], p50, width=0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], p99, width=0.4, label="p99")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([s.replace("_", " ") for s in stages])
    ax.set_yscale("log")
    ax.set_ylabel("us")
    ax.legend()
    ax.set_title(title + "\nper stage (forward: per batch)", fontsize=9)
    fig.tight_layout()
    fig.savefig(stem + "_stages.png", dpi=110)
    written.append(stem + "_stages.png")
    plt.close(fig)

    # Batch sizes.
    sizes = {int(k): v for k, v in r["batches"]["sizes"].items()}
    fig, ax = plt.subplots(figsize=(9, 5))
    if sizes:
        ax.bar(list(sizes), list(sizes.values()), width=0.8)
        ax.set_yscale("log")
    ax.set_xlabel("rows per batch")
    ax.set_ylabel("batches")
    ax.set_title(title + f"\n{r['batches']['count']:,} batches, mean size {r['batches']['mean_size']:.1f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(stem + "_batches.png", dpi=110)
    written.append(stem + "_batches.png")
    plt.close(fig)

    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
