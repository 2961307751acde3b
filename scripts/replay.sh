#!/usr/bin/env bash
# The main job: installs dependencies, builds (Release), exports the bundled model and replays the project's
# deterministic synthetic feed through the whole pipeline (book -> features -> queue -> batcher -> model),
# printing latency percentiles and throughput and writing build/tickinfer-replay.json.
# Extra arguments go to tickinfer-replay, e.g. a data file: scripts/replay.sh ../shared/data/lobster-amzn-l1/*message_1.csv
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >build.configure.log 2>&1 || { cat build.configure.log; exit 1; }
cmake --build build -j "${TICKINFER_JOBS:-$(nproc)}" --target tickinfer-replay tickinfer_models >/dev/null
exec build/apps/tickinfer-replay --json build/tickinfer-replay.json "$@"
