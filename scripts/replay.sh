#!/usr/bin/env bash
# The main job: installs dependencies, builds (Release), exports the bundled model and replays the project's
# deterministic synthetic feed through the whole pipeline (book -> features -> queue -> batcher -> model) with
# --sweep: first its capacity (events/s, as fast as possible), then end-to-end latency percentiles at offered
# rates from 10% to 125% of it (paced), and the highest rate whose p99 meets the target; the report is
# build/tickinfer-replay-sweep.json (scripts/plot_report.py draws the curve).
# Extra arguments go to tickinfer-replay, e.g. a data file: scripts/replay.sh ../shared/data/lobster-amzn-l1/*message_1.csv
# or --direct (the feed thread runs the model itself). One plain replay: build/apps/tickinfer-replay [DATA].
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >build.configure.log 2>&1 || { cat build.configure.log; exit 1; }
cmake --build build -j "${TICKINFER_JOBS:-$(nproc)}" --target tickinfer-replay tickinfer_models >/dev/null
exec build/apps/tickinfer-replay --sweep --json build/tickinfer-replay-sweep.json "$@"
