#pragma once
// A std::mutex that clang's -Wthread-safety can check: members it guards are declared TICKINFER_GUARDED_BY(m),
// functions that need it TICKINFER_REQUIRES(m). With GCC the annotations compile to nothing.

#include <mutex>

#if defined(__clang__)
#define TICKINFER_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define TICKINFER_THREAD_ANNOTATION(x)
#endif

#define TICKINFER_CAPABILITY(x) TICKINFER_THREAD_ANNOTATION(capability(x))
#define TICKINFER_SCOPED_CAPABILITY TICKINFER_THREAD_ANNOTATION(scoped_lockable)
#define TICKINFER_GUARDED_BY(x) TICKINFER_THREAD_ANNOTATION(guarded_by(x))
#define TICKINFER_PT_GUARDED_BY(x) TICKINFER_THREAD_ANNOTATION(pt_guarded_by(x))
#define TICKINFER_REQUIRES(...) TICKINFER_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define TICKINFER_EXCLUDES(...) TICKINFER_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define TICKINFER_ACQUIRE(...) TICKINFER_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define TICKINFER_RELEASE(...) TICKINFER_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TICKINFER_TRY_ACQUIRE(...) TICKINFER_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define TICKINFER_RETURN_CAPABILITY(x) TICKINFER_THREAD_ANNOTATION(lock_returned(x))
#define TICKINFER_NO_THREAD_SAFETY_ANALYSIS TICKINFER_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace tickinfer {

/// std::mutex with capability annotations. Not recursive; lock() blocks.
class TICKINFER_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() TICKINFER_ACQUIRE() { mutex_.lock(); }
  void unlock() TICKINFER_RELEASE() { mutex_.unlock(); }
  bool try_lock() TICKINFER_TRY_ACQUIRE(true) { return mutex_.try_lock(); }
  /// For std::condition_variable through MutexLock::native(); not for locking directly.
  std::mutex& native() noexcept TICKINFER_RETURN_CAPABILITY(this) { return mutex_; }

 private:
  std::mutex mutex_;
};

/// Holds a Mutex for its scope. For condition variables: `while (!ready) cv.wait(lock.native());` (a loop in
/// the function body, not a predicate lambda, so the analysis sees the guarded reads happen under the lock).
class TICKINFER_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) TICKINFER_ACQUIRE(mutex) : lock_(mutex.native()) {}
  ~MutexLock() TICKINFER_RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() TICKINFER_RELEASE() { lock_.unlock(); }
  void lock() TICKINFER_ACQUIRE() { lock_.lock(); }
  std::unique_lock<std::mutex>& native() noexcept { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace tickinfer
