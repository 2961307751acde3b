// main() for the plain (non-libFuzzer) build of a fuzz target.
//
//   fuzz_<target>_replay FILE|DIR...            feeds every file named, or found under a directory named, to
//                                               LLVMFuzzerTestOneInput once (ctest: fuzz/corpus/<target> and
//                                               fuzz/regressions/<target>, so GCC and sanitizer builds replay them)
//   fuzz_<target>_replay -mutate=SECONDS [-artifact=PATH] FILE|DIR...
//                                               random mutations of those inputs for SECONDS, without coverage
//                                               feedback: for targets libFuzzer cannot build (clang cannot
//                                               compile LibTorch 1.13's headers, docs/FUZZING.md). Each input is
//                                               written to PATH before it runs, so a crash leaves it there.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

// The allocation limit libFuzzer runs with (-rss_limit_mb=2048 sets -malloc_limit_mb): one allocation above it is
// a crash here too, so an "oom-*" input saved from libFuzzer still fails its replay until the reader is fixed.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TICKINFER_REPLAY_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TICKINFER_REPLAY_SANITIZER 1
#endif
#endif
#if defined(TICKINFER_REPLAY_SANITIZER)
// The sanitizer allocators enforce it (and report the allocation); ASAN_OPTIONS / TSAN_OPTIONS add to this.
extern "C" const char* __asan_default_options() { return "max_allocation_size_mb=2048:allocator_may_return_null=0"; }
extern "C" const char* __tsan_default_options() { return "max_allocation_size_mb=2048:allocator_may_return_null=0"; }
#else
namespace {
constexpr std::size_t kMaxAllocation = std::size_t{2048} << 20;
void* checked_malloc(std::size_t size) {
  if (size > kMaxAllocation) {
    std::fprintf(stderr, "replay: out-of-memory: one allocation of %zu bytes (limit %zu, as libFuzzer's)\n", size,
                 kMaxAllocation);
    std::abort();
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
}  // namespace
void* operator new(std::size_t size) { return checked_malloc(size); }
void* operator new[](std::size_t size) { return checked_malloc(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

using Bytes = std::vector<std::uint8_t>;

void run_one(const Bytes& bytes) {
  // A copy of exactly `size` bytes on the heap, so ASan sees reads past the end as libFuzzer would.
  Bytes copy(bytes);
  LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
}

void mutate(Bytes& b, const std::vector<Bytes>& pool, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    switch (rng() % 7) {
      case 0:  // flip a bit
        if (!b.empty()) b[pick(b.size())] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
        break;
      case 1:  // a random byte
        if (!b.empty()) b[pick(b.size())] = static_cast<std::uint8_t>(rng());
        break;
      case 2:  // an "interesting" byte
        if (!b.empty()) {
          static constexpr std::uint8_t kBytes[] = {0,   1,   0x7f, 0x80, 0xff, '0', '9',
                                                    '-', '.', ',',  '\n', '"',  '{', '['};
          b[pick(b.size())] = kBytes[pick(sizeof kBytes)];
        }
        break;
      case 3:  // insert bytes
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(pick(b.size() + 1)), 1 + pick(8),
                 static_cast<std::uint8_t>(rng()));
        break;
      case 4:  // erase a range
        if (!b.empty()) {
          const std::size_t at = pick(b.size());
          b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
                  b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), at + 1 + pick(16))));
        }
        break;
      case 5:  // truncate
        if (!b.empty()) b.resize(pick(b.size()));
        break;
      default:  // splice in part of another input
        if (!pool.empty()) {
          const Bytes& other = pool[pick(pool.size())];
          if (!other.empty()) {
            const std::size_t from = pick(other.size());
            const std::size_t len = 1 + pick(std::min<std::size_t>(64, other.size() - from));
            b.insert(b.begin() + static_cast<std::ptrdiff_t>(pick(b.size() + 1)),
                     other.begin() + static_cast<std::ptrdiff_t>(from),
                     other.begin() + static_cast<std::ptrdiff_t>(from + len));
          }
        }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  double mutate_seconds = 0;
  std::string artifact = "fuzz-last-input";
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("-mutate=")) {
      mutate_seconds = std::stod(std::string(a.substr(8)));
      continue;
    }
    if (a.starts_with("-artifact=")) {
      artifact = std::string(a.substr(10));
      continue;
    }
    const std::filesystem::path arg(a);
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg)) {
        if (entry.is_regular_file() && entry.path().filename().string().front() != '.') files.push_back(entry.path());
      }
    } else if (std::filesystem::is_regular_file(arg)) {
      files.push_back(arg);
    } else {
      // A target without saved crashes has no fuzz/regressions/<target>: nothing to replay there.
      std::fprintf(stderr, "replay: no %s (skipped)\n", argv[i]);
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<Bytes> pool;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "replay: cannot read %s\n", file.c_str());
      return 1;
    }
    Bytes bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", file.c_str(), bytes.size());
    run_one(bytes);
    pool.push_back(std::move(bytes));
  }
  std::printf("replay: %zu inputs, no crash\n", files.size());
  if (mutate_seconds <= 0) return 0;

  if (pool.empty()) pool.emplace_back();
  std::mt19937_64 rng(0x7469636b);  // fixed: a run can be repeated
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::duration<double>(mutate_seconds);
  std::uint64_t runs = 0;
  while (std::chrono::steady_clock::now() < until) {
    Bytes input = pool[static_cast<std::size_t>(rng() % pool.size())];
    mutate(input, pool, rng);
    {
      std::ofstream out(artifact, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(input.data()), static_cast<std::streamsize>(input.size()));
    }
    run_one(input);
    ++runs;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::filesystem::remove(artifact);
  std::printf("mutate: %llu runs in %.0f s (%.0f exec/s), no crash\n", static_cast<unsigned long long>(runs), secs,
              static_cast<double>(runs) / secs);
  return 0;
}
