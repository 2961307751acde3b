#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/, docs/FUZZING.md) for SECONDS each (default 60), every target or those named:
#   - libFuzzer (clang++-14, the Torch-free core instrumented with ASan+UBSan, build-fuzz/): lobster tardis itch
#     moldudp64 capture zip feature_config, onnx (the native engine's ONNX front end: libonnx and the core, no
#     Torch) and infer_json (the KServe v2 inference request decoder of tickinfer::serve: nlohmann and the core).
#     This build is also CI's clang -Wthread-safety -Werror check: of tickinfer_core, and of the Torch sources
#     parsed with -fsyntax-only (tickinfer_torch_syntax_check, lib/CMakeLists.txt).
#   - metadata, weights and http (the admin server's router calls the registry) need LibTorch, whose 1.13 headers
#     clang cannot compile in C++20 (pytorch#93978): their
#     GCC ASan+UBSan replay binaries (build-asan/, as scripts/test.sh asan builds it) run random mutations of
#     the seeds without coverage feedback (replay_main.cpp -mutate).
# Each target's corpus grows in build-fuzz/fuzz-work/<target>/corpus (seeds: fuzz/corpus/<target>, saved crashes
# fuzz/regressions/<target>, and excerpts of ../shared/data when the workspace has it). A crash fails the run and
# leaves its input under build-fuzz/fuzz-work/<target>/artifacts/: copy it to fuzz/regressions/<target>/, where
# ctest fuzz.<target> replays it in every test build.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   env: TICKINFER_JOBS, TICKINFER_FUZZ_RSS_MB (2048), TICKINFER_FUZZ_BUILD (build-fuzz),
#        TICKINFER_FUZZ_TORCH_BUILD (build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-60}
shift || true
jobs=${TICKINFER_JOBS:-$(nproc)}
rss_mb=${TICKINFER_FUZZ_RSS_MB:-2048}
build=${TICKINFER_FUZZ_BUILD:-build-fuzz}
torch_build=${TICKINFER_FUZZ_TORCH_BUILD:-build-asan}
libfuzzer_targets=(lobster tardis itch moldudp64 capture zip feature_config onnx infer_json)
torch_targets=(metadata weights http)
targets=("$@")
((${#targets[@]})) || targets=("${libfuzzer_targets[@]}" "${torch_targets[@]}")

want_libfuzzer=() want_torch=()
for t in "${targets[@]}"; do
  if [[ " ${libfuzzer_targets[*]} " == *" $t "* ]]; then want_libfuzzer+=("$t")
  elif [[ " ${torch_targets[*]} " == *" $t "* ]]; then want_torch+=("$t")
  else echo "fuzz: unknown target $t (known: ${libfuzzer_targets[*]} ${torch_targets[*]})"; exit 2; fi
done

configure() {  # dir, extra cmake args...
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -G Ninja "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
}

if ((${#want_libfuzzer[@]})); then
  configure "$build" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTICKINFER_FUZZ=ON \
    -DTICKINFER_WERROR=ON -DTICKINFER_TORCH_FREE_ONLY=ON -DTICKINFER_TORCH_SYNTAX_CHECK=ON \
    -DTICKINFER_BUILD_TESTS=OFF -DTICKINFER_BUILD_BENCH=OFF -DTICKINFER_BUILD_APPS=OFF
  cmake --build "$build" -j "$jobs" --target tickinfer_core tickinfer_fuzzers tickinfer_torch_syntax_check
  echo "fuzz: clang++-14 -Wthread-safety -Werror: tickinfer_core, the Torch sources (parsed) and the fuzz targets are clean"
fi
if ((${#want_torch[@]})); then
  [[ -f $torch_build/CMakeCache.txt ]] ||  # the same configuration as scripts/test.sh asan
    configure "$torch_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTICKINFER_SANITIZE="address;undefined" \
      -DTICKINFER_BUILD_BENCH=OFF -DTICKINFER_BUILD_APPS=OFF
  cmake --build "$torch_build" -j "$jobs" --target $(printf 'fuzz_%s_replay ' "${want_torch[@]}")
fi

# Excerpts of the recorded data, when the workspace has it (never committed: fuzz/make_seeds.py writes the seeds).
shared_seeds() {  # target, dir
  local data=$root/../shared/data
  [[ -d $data ]] || return 0
  mkdir -p "$2"
  /usr/bin/env python3 - "$1" "$2" "$data" <<'PY' || true
import glob, os, struct, sys
target, out, data = sys.argv[1:]
def head(path, lines):
    with open(path, "rb") as f:
        return b"".join(f.readline() for _ in range(lines))
def put(name, b):
    open(os.path.join(out, name), "wb").write(b)
if target == "lobster":
    for m in glob.glob(data + "/lobster-*/*_message_*.csv"):
        book = m.replace("_message_", "_orderbook_")
        msg = head(m, 40)
        put(os.path.basename(m), b"\x02" + struct.pack("<H", len(msg)) + msg + (head(book, 40) if os.path.exists(book) else b""))
elif target == "tardis":
    for p in glob.glob(data + "/tardis-*/*.csv"):
        put(os.path.basename(p), b"\x00" + head(p, 40))
elif target == "itch":
    for p in glob.glob(data + "/itch*/*.itch"):
        put(os.path.basename(p), b"\x00" + open(p, "rb").read(8192))
elif target == "moldudp64":  # the fixture's first 200 messages, 10 per datagram (fuzz/moldudp64_fuzz.cpp's input)
    for p in glob.glob(data + "/itch*/*.itch"):
        raw, msgs, pos = open(p, "rb").read(), [], 0
        while pos + 2 <= len(raw) and len(msgs) < 200:
            n = struct.unpack(">H", raw[pos:pos + 2])[0]
            msgs.append(raw[pos:pos + 2 + n])
            pos += 2 + n
        out_bytes = b"\x01"
        for i in range(0, len(msgs), 10):
            d = b"TICKINFER " + struct.pack(">QH", 1 + i, len(msgs[i:i + 10])) + b"".join(msgs[i:i + 10])
            out_bytes += struct.pack("<H", len(d)) + d
        put(os.path.basename(p), out_bytes)
PY
}

failed=()
summary=()
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
[[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]] && export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
for t in "${want_libfuzzer[@]}"; do
  work=$build/fuzz-work/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  shared_seeds "$t" "$work/shared-seeds"
  dirs=("$work/corpus" "fuzz/corpus/$t")
  [[ -d fuzz/regressions/$t ]] && dirs+=("fuzz/regressions/$t")
  [[ -d $work/shared-seeds ]] && dirs+=("$work/shared-seeds")
  echo "fuzz: $t for ${seconds} s (libFuzzer, ASan+UBSan)"
  rc=0
  "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "${dirs[@]}" >"$work/log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$work/log" | tail -1 || true)
  if ((rc == 0)); then
    summary+=("$t: libFuzzer ${seconds} s, ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-?}, no crash")
  else
    tail -60 "$work/log"
    summary+=("$t: CRASH (rc $rc) after ${runs:-?} runs: $(ls "$work"/artifacts/* 2>/dev/null | tr '\n' ' ')")
    failed+=("$t")
  fi
done
for t in "${want_torch[@]}"; do
  work=$build/fuzz-work/$t
  mkdir -p "$work/artifacts"
  echo "fuzz: $t for ${seconds} s (random mutation, GCC ASan+UBSan)"
  rc=0
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 "$torch_build/fuzz/fuzz_${t}_replay" -mutate="$seconds" \
    -artifact="$work/artifacts/last-input" "fuzz/corpus/$t" "fuzz/regressions/$t" >"$work/log" 2>&1 || rc=$?
  if ((rc == 0)); then
    summary+=("$t: mutation ${seconds} s, $(grep -o '[0-9]* runs.*exec/s' "$work/log" || echo '?')")
  else
    tail -60 "$work/log"
    crash=$work/artifacts/crash-$(sha1sum "$work/artifacts/last-input" | cut -c1-40)
    mv "$work/artifacts/last-input" "$crash"
    summary+=("$t: CRASH (rc $rc): $crash")
    failed+=("$t")
  fi
done

echo "=== fuzz summary (logs: $build/fuzz-work/<target>/log)"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: crashes in ${failed[*]}: copy each input to fuzz/regressions/<target>/ (ctest fuzz.<target> replays it)"
  exit 1
fi
