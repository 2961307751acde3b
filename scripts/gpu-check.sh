#!/usr/bin/env bash
# GPU check of the CUDA runner (docs/CUDA.md). On a machine with PyTorch 2.x + CUDA, the CUDA toolkit, CMake,
# ninja and a C++20 compiler, but no internet and no Debian dev packages: builds GoogleTest and Google Benchmark
# from .gpu-deps/src, builds tickinfer against the pip LibTorch with .gpu-deps/prefix for every other dependency
# (scripts/stage-gpu-deps.sh stages it), runs the GPU tests, the LibTorch-2.x-facing Torch tests and the GPU
# benchmark, and writes into OUT_DIR:
#   report.json, report.txt  machine, each step (status, seconds), tests (per case), benchmark numbers
#   cuda_test.json           GoogleTest JSON of tests/cuda_test.cpp
#   cuda_bench.json          Google Benchmark JSON of bench/cuda_bench.cpp
#   logs.tar.gz              every step's log, and the other tests' JSON
# Usage: scripts/gpu-check.sh OUT_DIR                       on the GPU machine (about 3-6 minutes)
#        scripts/gpu-check.sh OUT_DIR --dry-run [TARGET...]  here, without a GPU: Debian's LibTorch, Debian's copies of
#            the other dependencies hidden from CMake; configures, checks every dependency came from .gpu-deps,
#            builds TARGETs if given, then stops
# Exit status 0: everything built and every test passed (or, for --dry-run, configured from .gpu-deps).
set -uo pipefail  # not -e: a failed step is recorded and the report is still written
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
start=$(date +%s)

out=${1:?usage: scripts/gpu-check.sh OUT_DIR [--dry-run [TARGET...]]}
shift
dry_run=0
dry_targets=()
if [[ ${1:-} == --dry-run ]]; then
  dry_run=1
  shift
  dry_targets=("$@")
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
deps=$root/.gpu-deps
work=${TICKINFER_GPU_BUILD_DIR:-$root/build-gpu}
logs=$work/logs
jobs=${TICKINFER_JOBS:-$(nproc)}
rm -rf "$logs"
mkdir -p "$logs"
: >"$logs/steps.tsv"

if [[ ! -d $deps/prefix || ! -d $deps/src ]]; then
  echo "gpu-check: no .gpu-deps/ here; run scripts/stage-gpu-deps.sh on a machine with apt, and carry .gpu-deps along"
  exit 2
fi

# The development links, in case the copy to this machine did not keep symbolic links.
for link in libcrypto.so:libcrypto.so.3 libssl.so:libssl.so.3 libzip.so:libzip.so.4; do
  [[ -e $deps/prefix/lib/${link%%:*} ]] || ln -sf "${link#*:}" "$deps/prefix/lib/${link%%:*}"
done

# The whole run stays inside this many seconds (each step's timeout is cut to what is left), so a report is
# always written before the caller's own time limit.
budget=${TICKINFER_GPU_CHECK_BUDGET:-470}
((dry_run)) && budget=${TICKINFER_GPU_CHECK_BUDGET:-100000}  # here, on 2 cores, a build takes what it takes

# step NAME TIMEOUT_S COMMAND...: runs COMMAND with its output in logs/NAME.log; records status and seconds.
step() {
  local name=$1 limit=$2 t0 rc left
  shift 2
  left=$((budget - ($(date +%s) - start) - 15))
  ((left < limit)) && limit=$left
  echo "=== gpu-check: $name"
  if ((limit <= 0)); then
    echo "gpu-check: $name skipped: the ${budget}s budget is spent"
    printf '%s\t%s\t%s\n' "$name" 125 0 >>"$logs/steps.tsv"
    return 125
  fi
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$logs/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t0))" >>"$logs/steps.tsv"
  if ((rc != 0)); then
    echo "gpu-check: $name failed (exit $rc$( ((rc == 124)) && echo ", timed out after ${limit}s")); last lines:"
    tail -n 25 "$logs/$name.log"
  fi
  return "$rc"
}

# ---- the machine and the LibTorch to build against
if ((dry_run)); then
  python=/usr/bin/python3
  arch=$(gcc -print-multiarch)
  torch_args=("-DTorch_DIR=/usr/lib/$arch/cmake/Torch")
else
  python=${TICKINFER_PYTHON:-$(command -v python3)}
  torch_args=()  # found through CMAKE_PREFIX_PATH (torch.utils.cmake_prefix_path)
fi
torch_info=$("$python" -c 'import torch
print(torch.__version__, torch.version.cuda, int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.utils.cmake_prefix_path)' \
  2>"$logs/python.log") || { echo "gpu-check: $python cannot import torch:"; cat "$logs/python.log"; exit 2; }
read -r torch_version torch_cuda abi torch_prefix <<<"$torch_info"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "mode: $( ((dry_run)) && echo dry-run || echo gpu)"
  echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  echo "nvcc: $(nvcc --version 2>/dev/null | tail -1)"
  echo "torch: $torch_version (CUDA $torch_cuda, _GLIBCXX_USE_CXX11_ABI=$abi) from $python"
  echo "torch.cuda.is_available: $("$python" -c 'import torch; print(torch.cuda.is_available())' 2>/dev/null)"
  echo "cxx: $(c++ --version | head -1)"
  echo "cmake: $(cmake --version | head -1)"
  echo "ninja: $(ninja --version 2>/dev/null)"
  echo "glibc: $(ldd --version 2>/dev/null | head -1)"
  echo "kernel: $(uname -r)"
  echo "cpus: $(nproc)"
} >"$logs/machine.txt"
cat "$logs/machine.txt"

# ---- GoogleTest and Google Benchmark from source, with LibTorch's C++ ABI (kept between runs on a warm machine)
deps_prefix=$work/deps-prefix
deps_stamp="$deps_prefix/.built-with-abi-$abi"
build_test_deps() {  # runs under timeout in a child bash: everything it reads is exported below
  local common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$deps_prefix"
                -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$abi"
                -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
  cmake -S "$deps/src/googletest" -B "$work/deps-build/googletest" "${common[@]}" -DBUILD_GMOCK=ON -DINSTALL_GTEST=ON &&
    cmake --build "$work/deps-build/googletest" -j "$jobs" --target install &&
    cmake -S "$deps/src/benchmark" -B "$work/deps-build/benchmark" "${common[@]}" -DBENCHMARK_ENABLE_TESTING=OFF \
      -DBENCHMARK_ENABLE_GTEST_TESTS=OFF -DBENCHMARK_ENABLE_WERROR=OFF -DBENCHMARK_ENABLE_LIBPFM=OFF \
      -DBENCHMARK_INSTALL_DOCS=OFF -DBENCHMARK_ENABLE_INSTALL=ON &&
    cmake --build "$work/deps-build/benchmark" -j "$jobs" --target install &&
    touch "$deps_stamp"
}
export -f build_test_deps
export deps work abi jobs deps_prefix deps_stamp
ok=1
if [[ ! -f $deps_stamp ]]; then
  rm -rf "$deps_prefix" "$work/deps-build"
  step test-deps 300 bash -c build_test_deps || ok=0
fi

# ---- tickinfer
# The staged shared libraries' own dependencies (libzip -> libbz2) may be missing here: the linker and loader
# look in lib/fallback after the system.
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$deps/prefix/lib/fallback"
[[ -d /usr/local/cuda/bin ]] && export PATH="$PATH:/usr/local/cuda/bin"
boost_dir=$(find "$deps/prefix/lib" -maxdepth 3 -type d -name "Boost-*" | head -1)
build=$work/tickinfer
configure_args=(-S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
                -DCMAKE_PREFIX_PATH="$deps_prefix;$deps/prefix;$torch_prefix" "${torch_args[@]}"
                -DOPENSSL_ROOT_DIR="$deps/prefix" -DBoost_DIR="$boost_dir" -DTICKINFER_PYTHON="$python"
                -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$deps/prefix/lib:$deps/prefix/lib/fallback"
                -DCMAKE_SHARED_LINKER_FLAGS="-Wl,-rpath-link,$deps/prefix/lib:$deps/prefix/lib/fallback")
[[ -d /usr/local/cuda ]] && configure_args+=(-DCUDAToolkit_ROOT=/usr/local/cuda)
# Where each dependency must have come from, by cache entry.
checked_cache=(nlohmann_json_DIR CLI11_DIR tomlplusplus_DIR Boost_DIR GTest_DIR benchmark_DIR OPENSSL_INCLUDE_DIR
               OPENSSL_CRYPTO_LIBRARY TICKINFER_CONCURRENTQUEUE_DIR TICKINFER_LIBZIP_INCLUDE_DIR TICKINFER_LIBZIP_LIBRARY)
if ((dry_run)); then
  # Hide Debian's copies of everything .gpu-deps provides, so only the staged ones can satisfy the searches.
  hidden=(/usr/include/concurrentqueue /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11)
  for d in tomlplusplus Boost-1.74.0 boost_headers-1.74.0 GTest benchmark libzip; do hidden+=("/usr/lib/$arch/cmake/$d"); done
  configure_args+=(-DCMAKE_IGNORE_PATH="$(IFS=';'; echo "${hidden[*]}")")
fi
rm -rf "$build"
if step configure 240 cmake "${configure_args[@]}"; then
  cuda_runner=$(grep -o 'CUDA runner: [A-Z]*' "$logs/configure.log" | awk '{print $3}')
  {
    echo "dependency origins (CMake cache):"
    for var in "${checked_cache[@]}"; do
      value=$(grep -E "^$var:[A-Z]+=" "$build/CMakeCache.txt" | head -1 | cut -d= -f2-)
      where=other
      [[ $value == "$deps"/* || $value == "$deps_prefix"/* ]] && where=staged
      printf '  %-32s %-7s %s\n' "$var" "$where" "$value"
    done
  } | tee "$logs/dependency-origins.txt"
  if grep -q ' other ' "$logs/dependency-origins.txt"; then
    echo "gpu-check: a dependency was found outside .gpu-deps (above)"
    ((dry_run)) && ok=0
  fi
else
  ok=0
  cuda_runner=unknown
fi

tests_to_run=()
if ((dry_run)); then
  if ((ok)) && ((${#dry_targets[@]})); then step build 1800 cmake --build "$build" -j "$jobs" --target "${dry_targets[@]}" || ok=0; fi
elif ((ok)); then
  if [[ $cuda_runner != ON ]]; then
    echo "gpu-check: the LibTorch found has no CUDA (configure says 'CUDA runner: $cuda_runner')"
    ok=0
  else
    # The GPU targets, plus the Torch tests that exercise LibTorch 2.x through the CPU path.
    targets=(cuda_test cuda_bench)
    for t in torchscript_test pipeline_torch_test hot_swap_test; do
      ninja -C "$build" -t targets all 2>/dev/null | grep -q "^$t:" && targets+=("$t")
    done
    if step build 420 cmake --build "$build" -j "$jobs" --target "${targets[@]}"; then
      for t in "${targets[@]}"; do [[ $t == *_test ]] && tests_to_run+=("$t"); done
    else
      ok=0
    fi
  fi
fi

# A header the compiler took from the system instead of .gpu-deps (here, where Debian's copies exist).
if [[ -f $logs/build.log ]]; then
  ninja -C "$build" -t deps 2>/dev/null | grep -E "^ +/usr/include/(boost|openssl|toml\+\+|nlohmann|CLI|concurrentqueue|zip)" |
    sort -u >"$logs/system-headers.txt"
  if [[ -s $logs/system-headers.txt ]]; then
    echo "gpu-check: $(wc -l <"$logs/system-headers.txt") headers came from the system, not .gpu-deps:"
    head -20 "$logs/system-headers.txt"
    ok=0
  fi
fi

# ---- tests and benchmark
for t in ${tests_to_run[@]+"${tests_to_run[@]}"}; do
  bin=$build/tests/$t
  json=$logs/$t.json
  [[ $t == cuda_test ]] && json=$out/cuda_test.json
  # The tests find their models through paths compiled in; they run from the build tree.
  step "$t" 300 "$bin" --gtest_output="json:$json" || ok=0
done
if ((!dry_run)) && [[ -x $build/bench/cuda_bench ]]; then
  step cuda_bench 300 "$build/bench/cuda_bench" --benchmark_min_time=0.2 --benchmark_out="$out/cuda_bench.json" \
    --benchmark_out_format=json || ok=0
fi

# ---- report
grep -E "warning:" "$logs/build.log" 2>/dev/null | grep -E "$root/(lib|tests|bench|apps)/" | sort -u >"$logs/our-warnings.txt"
"$python" - "$out" "$logs" "$ok" "$((dry_run))" "$cuda_runner" "$(($(date +%s) - start))" <<'PY'
import json, os, sys

out, logs, ok, dry_run, cuda_runner, seconds = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1", \
    sys.argv[5], int(sys.argv[6])

def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""

machine = dict(line.split(": ", 1) for line in read(os.path.join(logs, "machine.txt")).splitlines() if ": " in line)
steps = []
for line in read(os.path.join(logs, "steps.tsv")).splitlines():
    name, rc, secs = line.split("\t")
    status = {"0": "ok", "124": "timeout", "125": "skipped"}.get(rc, "failed")
    steps.append({"name": name, "exit": int(rc), "seconds": int(secs), "status": status})

def gtest(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    cases = []
    for suite in doc.get("testsuites", []):
        for case in suite.get("testsuite", []):
            status = "failed" if case.get("failures") else ("skipped" if case.get("result") == "SKIPPED" else "passed")
            cases.append({"name": suite["name"] + "." + case["name"], "status": status, "time": case.get("time"),
                          "failures": [f.get("failure", "").split("\n")[0] for f in case.get("failures", [])]})
    count = lambda s: sum(c["status"] == s for c in cases)
    return {"passed": count("passed"), "failed": count("failed"), "skipped": count("skipped"), "cases": cases}

tests = {}
for name in ["cuda_test", "torchscript_test", "pipeline_torch_test", "hot_swap_test"]:
    result = gtest(os.path.join(out if name == "cuda_test" else logs, name + ".json"))
    if result is not None:
        tests[name] = result

bench = {}
try:
    with open(os.path.join(out, "cuda_bench.json")) as f:
        for b in json.load(f).get("benchmarks", []):
            keep = {k: v for k, v in b.items() if k.endswith(("_ns", "_us", "_per_s", "_share")) or k in
                    ("real_time", "time_unit", "iterations", "label", "error_message", "failed_batches")}
            bench[b["name"]] = keep
except (OSError, ValueError):
    pass

def find(prefix):
    return next((v for k, v in bench.items() if k.startswith(prefix)), {})

summary = {}
for graphs in (0, 1):
    tag = "graphs" if graphs else "eager"
    for kind in ("Runner", "Pipeline"):
        b = find(f"BM_Cuda{kind}B1/graphs:{graphs}")
        if "p50_ns" in b:
            summary[f"b1_{kind.lower()}_{tag}_p50_us"] = round(b["p50_ns"] / 1000, 2)
            summary[f"b1_{kind.lower()}_{tag}_p99_us"] = round(b["p99_ns"] / 1000, 2)
    for model, m in (("mlp", 0), ("deep", 1)):
        for pipelined, mode in ((0, "run"), (1, "submit_collect")):
            b = find(f"BM_CudaThroughputMaxBatch/model:{m}/graphs:{graphs}/pipelined:{pipelined}")
            if "rows_per_s" in b:
                summary[f"b256_{model}_{tag}_{mode}_rows_per_s"] = round(b["rows_per_s"])
        b = find(f"BM_CudaCopyOverlap/model:{m}/graphs:{graphs}")
        if "hidden_copy_share" in b:
            summary[f"overlap_{model}_{tag}_hidden_copy_share"] = round(b["hidden_copy_share"], 3)
            summary[f"overlap_{model}_{tag}_h2d_us"] = round(b["h2d_us"], 2)
            summary[f"overlap_{model}_{tag}_forward_us"] = round(b["forward_us"], 2)

warnings = [w for w in read(os.path.join(logs, "our-warnings.txt")).splitlines() if w]
tests_ok = all(t["failed"] == 0 for t in tests.values())
steps_ok = all(s["status"] == "ok" for s in steps)
report = {"ok": ok and tests_ok and steps_ok, "mode": "dry-run" if dry_run else "gpu", "seconds": seconds, "machine": machine,
          "cuda_runner": cuda_runner, "steps": steps, "warnings_in_tickinfer_sources": warnings, "tests": tests,
          "bench_summary": summary, "bench": bench,
          "dependency_origins": read(os.path.join(logs, "dependency-origins.txt")).splitlines()[1:]}
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump(report, f, indent=2)

lines = [f"tickinfer gpu-check ({report['mode']}): {'OK' if report['ok'] else 'FAILED'} in {seconds} s", ""]
lines += [f"{k}: {v}" for k, v in machine.items()]
lines += ["", f"CUDA runner built: {cuda_runner}", "", "steps:"]
lines += [f"  {s['name']:<22} {s['status']:<8} {s['seconds']:>4} s" for s in steps]
if warnings:
    lines += ["", f"compiler warnings in tickinfer's sources: {len(warnings)}"] + ["  " + w for w in warnings[:20]]
for name, t in tests.items():
    lines += ["", f"{name}: {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped"]
    lines += [f"  {c['status'].upper():<7} {c['name']}" + (f": {c['failures'][0]}" if c["failures"] else "")
              for c in t["cases"] if c["status"] != "passed" or name == "cuda_test"]
if summary:
    lines += ["", "benchmark (bench/cuda_bench.cpp):"] + [f"  {k:<48} {v}" for k, v in summary.items()]
if report["dependency_origins"]:
    lines += ["", "dependency origins:"] + ["  " + l.strip() for l in report["dependency_origins"]]
with open(os.path.join(out, "report.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
report_rc=$?
tar -czf "$out/logs.tar.gz" -C "$work" logs 2>/dev/null
if ((report_rc != 0)); then
  echo "gpu-check: writing the report failed"
  exit 1
fi
grep -q '"ok": true' "$out/report.json"
