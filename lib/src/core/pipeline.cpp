// GCC 12 reports a false -Wstringop-overflow inside moodycamel's inlined enqueue_bulk; the location it
// names is libstdc++'s <atomic>, so the pragma must precede every include.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

#include "tickinfer/pipeline.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include <blockingconcurrentqueue.h>

#include "core/cpu_relax.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer {
namespace {

using internal::cpu_relax;

// Polls before an idle worker yields or sleeps: long enough to catch a steady feed without a syscall.
constexpr int kSpinPolls = 4000;
// A blocked worker re-checks for shutdown at least this often.
constexpr std::int64_t kBlockTimeoutUs = 2000;

// One accepted request. Features live in the arena at index * width.
struct Request {
  Completion completion;
  std::int64_t deadline_ns;
  std::int64_t enqueue_ns;
};

}  // namespace

struct Producer::State {
  moodycamel::ProducerToken queue_token;  // FIFO per producer, no shared tail
  moodycamel::ConsumerToken free_token;   // pops free slots without scanning every sub-queue
};

struct Pipeline::Impl {
  PipelineConfig config;
  std::size_t width = 0;
  std::shared_ptr<ModelSlot> models;
  std::shared_ptr<const Backend> backend;
  Metrics metrics;

  // Slot pool: bounded capacity is exactly the number of slots, so "queue full" is exact.
  std::vector<Request> requests;
  std::vector<float> arena;
  moodycamel::ConcurrentQueue<std::uint32_t> free_slots;
  moodycamel::BlockingConcurrentQueue<std::uint32_t> queue;

  std::vector<std::size_t> padded_rows_for;  // [n] = rows to run for n real rows
  std::size_t runner_rows = 0;

  // Release on store / acquire on load: a worker that sees stop also sees everything before shutdown().
  std::atomic<bool> accepting{true};
  std::atomic<bool> stopping{false};
  std::vector<std::thread> workers;
  std::once_flag shutdown_once;

  // Start-up handshake (off the hot path, so a mutex is fine).
  std::mutex start_mutex;
  std::condition_variable start_cv;
  std::size_t started = 0;
  std::exception_ptr start_error;

  Impl(const PipelineConfig& cfg, std::size_t feature_width, std::shared_ptr<ModelSlot> slot,
       std::shared_ptr<const Backend> be)
      : config(cfg),
        width(feature_width),
        models(std::move(slot)),
        backend(std::move(be)),
        metrics(cfg.max_batch, cfg.workers),
        requests(cfg.queue_capacity),
        arena(cfg.queue_capacity * feature_width),
        free_slots(cfg.queue_capacity + 64, 1 + cfg.workers, 0),
        queue(cfg.queue_capacity + 64 * (cfg.max_producers + 1), cfg.max_producers + 1, 0) {}

  void worker_main(std::size_t index);
  void run_batch(std::size_t index, Runner& runner, std::shared_ptr<const Model>& model, std::uint64_t& generation,
                 const std::uint32_t* slots, std::size_t count, std::int64_t formation_start_ns,
                 std::vector<std::uint8_t>& live, moodycamel::ProducerToken& free_token);
  void complete(const Request& request, const Result& result) noexcept;
  void warm_up(Runner& runner, const Model& model) const;
  void pin(std::size_t index) const;
  void drain_cancelled();
};

namespace {

std::vector<std::size_t> padding_table(const PipelineConfig& config) {
  std::vector<std::size_t> table(config.max_batch + 1, 0);
  for (std::size_t n = 1; n <= config.max_batch; ++n) {
    table[n] = n;
    if (!config.allowed_batch_sizes.empty()) {
      const auto it = std::lower_bound(config.allowed_batch_sizes.begin(), config.allowed_batch_sizes.end(), n);
      table[n] = *it;  // validated: the largest allowed size is >= max_batch
    }
  }
  return table;
}

void validate(const PipelineConfig& c) {
  auto fail = [](const std::string& why) { throw Error(ErrorCode::kInvalidConfig, "pipeline config: " + why); };
  if (c.max_batch == 0) fail("max_batch must be >= 1");
  if (c.max_batch > 65536) fail("max_batch must be <= 65536");
  if (c.queue_capacity == 0) fail("queue_capacity must be >= 1");
  if (c.queue_capacity > (std::size_t{1} << 31)) fail("queue_capacity must be < 2^31");
  if (c.workers == 0) fail("workers must be >= 1");
  if (c.max_delay_us < 0) fail("max_delay_us must be >= 0");
  if (!c.pin_cores.empty() && c.pin_cores.size() < c.workers)
    fail("pin_cores names " + std::to_string(c.pin_cores.size()) + " cores for " + std::to_string(c.workers) +
         " workers");
  if (!c.allowed_batch_sizes.empty()) {
    if (!std::is_sorted(c.allowed_batch_sizes.begin(), c.allowed_batch_sizes.end()) ||
        std::adjacent_find(c.allowed_batch_sizes.begin(), c.allowed_batch_sizes.end()) != c.allowed_batch_sizes.end())
      fail("allowed_batch_sizes must be strictly increasing");
    if (c.allowed_batch_sizes.front() == 0) fail("allowed_batch_sizes must be >= 1");
    if (c.allowed_batch_sizes.back() < c.max_batch)
      fail("the largest allowed batch size (" + std::to_string(c.allowed_batch_sizes.back()) +
           ") is below max_batch (" + std::to_string(c.max_batch) + ")");
  }
}

}  // namespace

std::unique_ptr<Pipeline> Pipeline::create(const PipelineConfig& config, std::shared_ptr<ModelSlot> models,
                                           std::shared_ptr<const Backend> backend) {
  validate(config);
  if (!models) throw Error(ErrorCode::kInvalidConfig, "pipeline: no model slot given");
  if (!backend) throw Error(ErrorCode::kInvalidConfig, "pipeline: no backend given");
  const auto model = models->current();
  if (!model) throw Error(ErrorCode::kInvalidConfig, "pipeline: the model slot holds no model");
  const std::size_t width = config.feature_width ? config.feature_width : model->input_width();
  if (width == 0) throw Error(ErrorCode::kInvalidConfig, "pipeline: feature width is 0");
  if (model->input_width() != width)
    throw Error(ErrorCode::kWidthMismatch, "pipeline: model " + model->source() + " has " +
                                               std::to_string(model->input_width()) +
                                               " input features, the pipeline expects " + std::to_string(width));

  auto impl = std::make_unique<Impl>(config, width, std::move(models), std::move(backend));
  impl->padded_rows_for = padding_table(config);
  impl->runner_rows = impl->padded_rows_for[config.max_batch];
  {
    moodycamel::ProducerToken token(impl->free_slots);
    for (std::uint32_t i = 0; i < config.queue_capacity; ++i) impl->free_slots.enqueue(token, i);
  }

  Impl* raw = impl.get();
  for (std::size_t i = 0; i < config.workers; ++i) raw->workers.emplace_back([raw, i] { raw->worker_main(i); });
  std::exception_ptr error;
  {
    std::unique_lock lock(raw->start_mutex);
    raw->start_cv.wait(lock, [raw] { return raw->started == raw->workers.size(); });
    error = raw->start_error;
  }
  auto pipeline = std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
  if (error) {
    pipeline->shutdown();
    std::rethrow_exception(error);
  }
  return pipeline;
}

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Pipeline::~Pipeline() { shutdown(); }

Producer::Producer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Producer::Producer(Producer&&) noexcept = default;
Producer& Producer::operator=(Producer&&) noexcept = default;
Producer::~Producer() = default;

Producer Pipeline::make_producer() {
  return Producer(std::unique_ptr<Producer::State>(
      new Producer::State{moodycamel::ProducerToken(impl_->queue), moodycamel::ConsumerToken(impl_->free_slots)}));
}

SubmitStatus Pipeline::submit(Producer& producer, std::span<const float> features, std::int64_t deadline_ns,
                              const Completion& completion) noexcept {
  Impl& impl = *impl_;
  if (features.size() != impl.width) {
    impl.metrics.invalid.add();
    return SubmitStatus::kInvalid;
  }
  std::uint32_t slot;
  if (!impl.free_slots.try_dequeue(producer.state_->free_token, slot)) {
    impl.metrics.rejected.add();
    return SubmitStatus::kRejected;
  }
  // Checked after taking a slot: shutdown() waits for every slot to come home, so a slot taken
  // here either reaches the queue (and is cancelled by the drain) or goes back below.
  // Acquire pairs with the release store in shutdown().
  if (!impl.accepting.load(std::memory_order_acquire)) {
    impl.free_slots.enqueue(slot);
    impl.metrics.rejected.add();
    return SubmitStatus::kRejected;
  }
  Request& request = impl.requests[slot];
  request.completion = completion;
  request.deadline_ns = deadline_ns;
  request.enqueue_ns = now_ns();
  std::memcpy(impl.arena.data() + std::size_t{slot} * impl.width, features.data(), impl.width * sizeof(float));
  // The enqueue publishes the request (moodycamel: release on enqueue, acquire on dequeue).
  if (!impl.queue.try_enqueue(producer.state_->queue_token, slot)) {
    // Only when the producer's preallocated blocks are exhausted (more producers than max_producers).
    impl.free_slots.enqueue(slot);
    impl.metrics.rejected.add();
    return SubmitStatus::kRejected;
  }
  impl.metrics.accepted.add();
  return SubmitStatus::kAccepted;
}

void Pipeline::Impl::pin(std::size_t index) const {
  if (config.pin_cores.empty()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(config.pin_cores[index], &set);
  const int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0)
    throw Error(ErrorCode::kInvalidConfig, "pipeline: cannot pin worker " + std::to_string(index) + " to core " +
                                               std::to_string(config.pin_cores[index]) + ": " + std::strerror(rc));
}

void Pipeline::Impl::warm_up(Runner& runner, const Model& model) const {
  // Every batch size the worker can run, so first-use allocations and JIT specialisation happen now.
  std::size_t last = 0;
  for (std::size_t n = 1; n <= config.max_batch; ++n) {
    const std::size_t rows = padded_rows_for[n];
    if (rows == last) continue;
    last = rows;
    auto input = runner.input(rows);
    std::fill(input.begin(), input.end(), 0.0f);
    for (int repeat = 0; repeat < 2; ++repeat) (void)runner.run(model, rows);
  }
}

void Pipeline::Impl::complete(const Request& request, const Result& result) noexcept {
  try {
    request.completion.fn(request.completion.context, result);
  } catch (...) {
    metrics.callback_exceptions.add();
  }
}

void Pipeline::Impl::worker_main(std::size_t index) {
  std::unique_ptr<Runner> runner;
  std::shared_ptr<const Model> model;
  std::uint64_t generation = 0;
  std::vector<std::uint32_t> batch(config.max_batch);
  std::vector<std::uint8_t> live(config.max_batch);
  moodycamel::ConsumerToken queue_token(queue);
  moodycamel::ProducerToken free_token(free_slots);
  try {
    pin(index);
    runner = backend->make_runner(runner_rows, width);
    models->refresh(model, generation);
    if (config.warm_up) warm_up(*runner, *model);
  } catch (...) {
    std::lock_guard lock(start_mutex);
    if (!start_error) start_error = std::current_exception();
  }
  {
    std::lock_guard lock(start_mutex);
    ++started;
    if (start_error) {
      start_cv.notify_all();
      return;
    }
  }
  start_cv.notify_all();

  const bool wait_for_fuller = config.max_delay_us > 0;
  const std::int64_t max_delay_ns = config.max_delay_us * 1000;
  int idle_polls = 0;
  // Acquire pairs with the release store in shutdown().
  while (!stopping.load(std::memory_order_acquire)) {
    std::size_t count = queue.try_dequeue_bulk(queue_token, batch.data(), config.max_batch);
    if (count == 0) {
      if (++idle_polls < kSpinPolls || config.idle == IdleStrategy::kSpin) {
        cpu_relax();
        continue;
      }
      if (config.idle == IdleStrategy::kSpinThenYield) {
        std::this_thread::yield();
        continue;
      }
      count = queue.wait_dequeue_bulk_timed(queue_token, batch.data(), config.max_batch, kBlockTimeoutUs);
      if (count == 0) continue;
    }
    idle_polls = 0;
    const std::int64_t formation_start = now_ns();
    if (wait_for_fuller && count < config.max_batch) {
      std::int64_t oldest = requests[batch[0]].enqueue_ns;
      for (std::size_t i = 1; i < count; ++i) oldest = std::min(oldest, requests[batch[i]].enqueue_ns);
      const std::int64_t close_at = oldest + max_delay_ns;
      while (count < config.max_batch && now_ns() < close_at) {
        const std::size_t more = queue.try_dequeue_bulk(queue_token, batch.data() + count, config.max_batch - count);
        if (more == 0) cpu_relax();
        count += more;
      }
    }
    run_batch(index, *runner, model, generation, batch.data(), count, formation_start, live, free_token);
  }
}

void Pipeline::Impl::run_batch(std::size_t index, Runner& runner, std::shared_ptr<const Model>& model,
                               std::uint64_t& generation, const std::uint32_t* slots, std::size_t count,
                               std::int64_t formation_start_ns, std::vector<std::uint8_t>& live,
                               moodycamel::ProducerToken& free_token) {
  WorkerStats& stats = metrics.worker(index);
  // One acquire load per batch; the mutex only when a new model was published.
  if (models->refresh(model, generation)) metrics.model_swaps_seen.add();

  // Expired requests are not run; they still complete in batch order below, to keep per-producer order.
  std::size_t live_count = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const Request& r = requests[slots[i]];
    live[i] = r.deadline_ns == kNoDeadline || r.deadline_ns >= formation_start_ns;
    if (live[i]) {
      stats.queue_wait.record_exclusive(formation_start_ns - r.enqueue_ns);
      ++live_count;
    }
  }

  std::span<const float> outputs;
  std::string batch_error;  // only allocated when a batch fails
  std::int64_t batch_start = 0, batch_end = 0;
  std::size_t out_width = 0;
  if (live_count > 0) {
    const std::size_t rows = padded_rows_for[live_count];
    if (!model) {
      batch_error = "no model is loaded";
    } else {
      try {
        std::span<float> input = runner.input(rows);
        float* row = input.data();
        for (std::size_t i = 0; i < count; ++i) {
          if (!live[i]) continue;
          std::memcpy(row, arena.data() + std::size_t{slots[i]} * width, width * sizeof(float));
          row += width;
        }
        std::fill(row, input.data() + rows * width, 0.0f);
        batch_start = now_ns();
        stats.batch_formation.record_exclusive(batch_start - formation_start_ns);
        outputs = runner.run(*model, rows);
        out_width = model->output_width();
      } catch (const std::exception& e) {
        batch_error = e.what();
      } catch (...) {
        batch_error = "unknown exception from the model runner";
      }
    }
    batch_end = now_ns();
    if (batch_start == 0) batch_start = batch_end;
    stats.forward.record_exclusive(batch_end - batch_start);
    stats.record_batch_size(live_count);
    metrics.batches.add();
    if (rows > live_count) metrics.padded_rows.add(rows - live_count);
    if (!batch_error.empty()) metrics.failed_batches.add();
    // Relaxed: a gauge for humans, orders nothing.
    if (model) metrics.model_version.store(model->version(), std::memory_order_relaxed);
  }

  const std::uint64_t version = model ? model->version() : 0;
  std::uint64_t ok = 0, expired = 0, errors = 0;
  std::size_t row = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const Request& r = requests[slots[i]];
    Result result;
    result.tag = r.completion.tag;
    result.enqueue_ns = r.enqueue_ns;
    if (!live[i]) {
      result.status = ResultStatus::kExpired;
      result.error = "deadline passed before the batch ran";
      ++expired;
      complete(r, result);
      continue;
    }
    result.model_version = version;
    result.batch_start_ns = batch_start;
    result.batch_end_ns = batch_end;
    stats.end_to_end.record_exclusive(batch_end - r.enqueue_ns);
    if (!batch_error.empty()) {
      result.status = ResultStatus::kModelError;
      result.error = batch_error;
      ++errors;
    } else {
      result.outputs = outputs.subspan(row * out_width, out_width);
      const bool finite =
          std::all_of(result.outputs.begin(), result.outputs.end(), [](float v) { return std::isfinite(v); });
      if (finite) {
        result.status = ResultStatus::kOk;
        ++ok;
      } else {
        result.status = ResultStatus::kModelError;
        result.error = "model output is not finite (NaN or Inf)";
        result.outputs = {};
        ++errors;
      }
    }
    ++row;
    complete(r, result);
  }
  if (ok) metrics.ok.add(ok);
  if (expired) metrics.expired.add(expired);
  if (errors) metrics.model_errors.add(errors);
  // Slots go home last: their completion was read above. Release via enqueue pairs with try_dequeue in submit().
  free_slots.enqueue_bulk(free_token, slots, count);
}

void Pipeline::Impl::drain_cancelled() {
  // Every slot must come home: queued ones are cancelled here, and a submit() racing with shutdown
  // either enqueues (cancelled on a later pass) or returns its slot itself.
  std::vector<std::uint32_t> batch(config.max_batch);
  moodycamel::ConsumerToken token(queue);
  moodycamel::ProducerToken free_token(free_slots);
  for (;;) {
    const std::size_t count = queue.try_dequeue_bulk(token, batch.data(), batch.size());
    for (std::size_t i = 0; i < count; ++i) {
      const Request& r = requests[batch[i]];
      Result result;
      result.status = ResultStatus::kCancelled;
      result.tag = r.completion.tag;
      result.enqueue_ns = r.enqueue_ns;
      result.error = "pipeline shut down before the request ran";
      complete(r, result);
    }
    if (count) {
      metrics.cancelled.add(count);
      free_slots.enqueue_bulk(free_token, batch.data(), count);
      continue;
    }
    // Exact once no submit() is mid-flight; until then a slot is still out and we poll again.
    if (free_slots.size_approx() >= config.queue_capacity && queue.size_approx() == 0) return;
    std::this_thread::yield();
  }
}

void Pipeline::shutdown() {
  std::call_once(impl_->shutdown_once, [this] {
    Impl& impl = *impl_;
    // Release: pairs with the acquire loads in submit() and worker_main().
    impl.accepting.store(false, std::memory_order_release);
    impl.stopping.store(true, std::memory_order_release);
    for (auto& t : impl.workers) t.join();
    impl.drain_cancelled();
  });
}

std::size_t Pipeline::feature_width() const noexcept { return impl_->width; }
const PipelineConfig& Pipeline::config() const noexcept { return impl_->config; }
const Metrics& Pipeline::metrics() const noexcept { return impl_->metrics; }
const ModelSlot& Pipeline::models() const noexcept { return *impl_->models; }

}  // namespace tickinfer
