#!/usr/bin/env bash
# The main job: installs dependencies, builds (Release), exports the bundled reference model and runs the
# pipeline benchmark on it. Extra arguments go to tickinfer-bench (e.g. --model build/models/deep.pt).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >build.configure.log 2>&1 || { cat build.configure.log; exit 1; }
cmake --build build -j "${TICKINFER_JOBS:-$(nproc)}" --target tickinfer-bench tickinfer_models >/dev/null
# One producer and one worker: give each its own core when there are two.
pin=()
if (($(nproc) >= 2)); then pin=(--producer-core 0 --worker-core 1); fi
exec build/apps/tickinfer-bench --model build/models/mlp.pt --json build/tickinfer-bench.json "${pin[@]}" "$@"
