#!/usr/bin/env bash
# Installs the Debian 12 packages tickinfer builds, tests and benchmarks with. Idempotent.
set -euo pipefail

packages=(
  build-essential cmake ninja-build git clang-format
  # scripts/fuzz.sh (test.sh fuzz): libFuzzer and the sanitizer runtimes, llvm-symbolizer for the stacks;
  # the same clang's -Wthread-safety.
  clang-14 libclang-rt-14-dev llvm-14
  libtorch-dev python3-torch python3-numpy
  # The native engine's ONNX front end, ONNX's node conformance tests, and ONNX export in the scripts.
  libonnx-dev libonnx-testdata python3-onnx
  # bench/native_bench's kernel candidates: Eigen 3.4; Highway, oneDNN and XNNPACK (each compiled in when found).
  libeigen3-dev libhwy-dev libdnnl-dev libxnnpack-dev
  # xnnpack.h includes pthreadpool.h, which libxnnpack-dev does not depend on.
  libpthreadpool-dev
  # Debian's reference BLAS makes a batch-64 MLP forward ~10x slower than OpenBLAS.
  libopenblas0-openmp
  libboost-dev libconcurrentqueue-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev
  # Feed readers: LOBSTER sample zips are read in place.
  libzip-dev
  # scripts/plot_report.py: PNG plots of tickinfer-replay's JSON reports.
  python3-matplotlib
  # The REST peer benchmark: scripts/peer_rest.py (FastAPI + uvicorn serving the TorchScript model over KServe v2
  # JSON) and scripts/bench_rest.sh (wrk with scripts/wrk_infer.lua).
  python3-fastapi uvicorn wrk
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
