#!/usr/bin/env bash
# Stages into .gpu-deps/ (git-ignored) everything besides LibTorch that building tickinfer needs, for a GPU
# machine that has PyTorch 2.x + CUDA but no internet and no Debian dev packages (scripts/gpu-check.sh, run
# there, uses it; docs/CUDA.md). Run it here: Debian 12 with apt reachable. Replaces .gpu-deps/.
#
#   .gpu-deps/prefix/    a CMake prefix for CMAKE_PREFIX_PATH: header-only libraries with their package configs,
#                        OpenSSL and libzip headers and shared libraries, the Boost headers Asio needs
#   .gpu-deps/src/       GoogleTest and Google Benchmark sources: gpu-check.sh builds them there, with the pip
#                        LibTorch's C++ ABI, instead of linking Debian's binaries
#   .gpu-deps/MANIFEST.txt  where each part came from (Debian package and version), sizes
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$root/.gpu-deps
limit_mib=60
arch=$(gcc -print-multiarch)
libdir=/usr/lib/$arch
start=$(date +%s)

scripts/install-deps.sh >/dev/null  # the Debian packages everything below is copied from

rm -rf "$out"
prefix=$out/prefix
mkdir -p "$prefix/include" "$prefix/lib/fallback" "$prefix/share/cmake" "$out/src"
manifest=$out/MANIFEST.txt
{
  echo "tickinfer GPU build dependencies, staged by scripts/stage-gpu-deps.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "from $(. /etc/os-release && echo "$PRETTY_NAME") ($arch); used by scripts/gpu-check.sh"
  echo
} >"$manifest"
note() {  # debian-package, what was taken
  printf '%-28s %-22s %s\n' "$1" "$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo source)" "$2" >>"$manifest"
}

# ---- header-only libraries, with Debian's relocatable package configs (paths relative to the config file)
cp -a /usr/include/concurrentqueue "$prefix/include/"
note libconcurrentqueue-dev "include/concurrentqueue (found by find_path)"
cp -a /usr/include/nlohmann "$prefix/include/"
cp -a /usr/share/cmake/nlohmann_json "$prefix/share/cmake/"
note nlohmann-json3-dev "include/nlohmann, share/cmake/nlohmann_json"
cp -a /usr/include/CLI "$prefix/include/"
cp -a /usr/share/cmake/CLI11 "$prefix/share/cmake/"
note libcli11-dev "include/CLI, share/cmake/CLI11"
cp -a /usr/include/toml++ "$prefix/include/"
# Debian's toml++ config points at its compiled library; the headers alone are upstream's default mode.
mkdir -p "$prefix/lib/cmake/tomlplusplus"
cp "$libdir/cmake/tomlplusplus/tomlplusplusConfigVersion.cmake" "$prefix/lib/cmake/tomlplusplus/"
cat >"$prefix/lib/cmake/tomlplusplus/tomlplusplusConfig.cmake" <<'EOF'
# Written by scripts/stage-gpu-deps.sh: toml++ header-only (TOML_HEADER_ONLY defaults to 1), no library.
if(NOT TARGET tomlplusplus::tomlplusplus)
  add_library(tomlplusplus::tomlplusplus INTERFACE IMPORTED)
  get_filename_component(_toml_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
  set_target_properties(tomlplusplus::tomlplusplus PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_toml_prefix}/include"
                                                              INTERFACE_COMPILE_FEATURES cxx_std_17)
  unset(_toml_prefix)
endif()
EOF
note libtomlplusplus-dev "include/toml++, lib/cmake/tomlplusplus (header-only config)"

# ---- Boost: only the headers Boost.Asio (the checkpoint watcher) pulls in, not all 160 MiB. The closure comes
# from the preprocessor, for C++17 and C++20, plus whole directories of the libraries Asio is built on.
boost_probe=$(mktemp -d)
trap 'rm -rf "$boost_probe"' EXIT
{
  echo '#include <boost/asio.hpp>'
  grep -rhoE '#include <boost/[^>]+>' lib apps tests bench 2>/dev/null | sort -u || true
} >"$boost_probe/probe.cpp"
for std in c++17 c++20; do
  g++ -std=$std -M "$boost_probe/probe.cpp" | tr ' \\' '\n\n' | grep '^/usr/include/boost/' || true
done | sort -u >"$boost_probe/files"
for dir in asio config predef system core assert type_traits smart_ptr; do
  find "/usr/include/boost/$dir" -type f
done >>"$boost_probe/files"
sort -u "$boost_probe/files" | sed 's|^/usr/include/||' | (cd /usr/include && xargs cp --parents -t "$prefix/include")
mkdir -p "$prefix/lib/$arch/cmake"
cp -a "$libdir"/cmake/Boost-* "$libdir"/cmake/BoostDetectToolset-* "$libdir"/cmake/boost_headers-* "$prefix/lib/$arch/cmake/"
note libboost1.74-dev "$(sort -u "$boost_probe/files" | wc -l) Boost headers (Asio's closure), lib/$arch/cmake/Boost*"
# Every Boost header the probe includes must resolve inside the staged tree.
missing=$(g++ -std=c++20 -M -I"$prefix/include" "$boost_probe/probe.cpp" | tr ' \\' '\n\n' | grep '^/usr/include/boost/' || true)
if [[ -n $missing ]]; then
  echo "stage-gpu-deps: Boost headers missing from the staged tree:"; echo "$missing"; exit 1
fi

# ---- OpenSSL (SHA-256 of hot-swapped checkpoints): headers + libcrypto/libssl. libcrypto.so.3 is glibc >= 2.34.
cp -a /usr/include/openssl "$prefix/include/"
cp -a "/usr/include/$arch/openssl/." "$prefix/include/openssl/"  # opensslconf.h, configuration.h
cp -L "$libdir/libcrypto.so.3" "$libdir/libssl.so.3" "$prefix/lib/"
ln -sf libcrypto.so.3 "$prefix/lib/libcrypto.so"
ln -sf libssl.so.3 "$prefix/lib/libssl.so"
note libssl-dev "include/openssl, lib/libcrypto.so.3, lib/libssl.so.3"

# ---- libzip (LOBSTER zips): found by find_path(zip.h) / find_library(zip). Its own needs (libz, libbz2,
# libcrypto) are on most machines; libbz2 goes to lib/fallback for those without (gpu-check.sh adds it if needed).
cp /usr/include/zip.h "$prefix/include/"
cp "$(dpkg -L libzip-dev | grep '/zipconf.h$' | head -1)" "$prefix/include/"
cp -L "$libdir/libzip.so.4" "$prefix/lib/libzip.so.4"
ln -sf libzip.so.4 "$prefix/lib/libzip.so"
cp -L "/lib/$arch/libbz2.so.1.0" "$prefix/lib/fallback/"
note libzip-dev "include/zip.h, zipconf.h, lib/libzip.so.4 (+ lib/fallback/libbz2.so.1.0)"

# ---- GoogleTest: Debian ships its sources.
cp -a /usr/src/googletest "$out/src/googletest"
note googletest "src/googletest (GoogleTest + GoogleMock sources)"

# ---- Google Benchmark: Debian ships only binaries; the source package comes through apt (deb-src of this
# machine's Debian release, in a private list so the system's apt configuration is untouched).
apt_dir=$(mktemp -d)
trap 'rm -rf "$boost_probe" "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/dl"
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror:-http://deb.debian.org/debian} $codename main" \
  >"$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$apt_dir/lists" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" -q update >/dev/null
bench_version=$(dpkg-query -W -f='${Version}' libbenchmark-dev)
(cd "$apt_dir/dl" && apt-get "${apt_opts[@]}" -q source --download-only "benchmark=$bench_version" >/dev/null)
mkdir -p "$out/src/benchmark"
tar -xf "$apt_dir"/dl/benchmark_*.orig.tar.* -C "$out/src/benchmark" --strip-components=1
printf '%-28s %-22s %s\n' benchmark "$bench_version" "src/benchmark (upstream sources of the Debian source package)" \
  >>"$manifest"

# ---- size
size_kib=$(du -sk "$out" | cut -f1)
{
  echo
  du -sh "$prefix/include"/* "$prefix/lib" "$out/src"/* | sed 's|'"$out"'/||'
  echo "total: $((size_kib / 1024)) MiB"
} >>"$manifest"
cat "$manifest"
if ((size_kib > limit_mib * 1024)); then
  echo "stage-gpu-deps: .gpu-deps is $((size_kib / 1024)) MiB, over the ${limit_mib} MiB budget"; exit 1
fi
echo "stage-gpu-deps: staged $((size_kib / 1024)) MiB into .gpu-deps/ in $(($(date +%s) - start)) s"
