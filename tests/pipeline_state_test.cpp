// Per-key state of sequence models (forward(x, h) -> (y, h')): gathered into each row, scattered back after it,
// equal to each key's sequence run alone at every batch size, reset per key or all, carried or reset on a swap.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/fake_model.hpp"
#include "support/wait.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/model_slot.hpp"
#include "tickinfer/pipeline.hpp"

namespace tickinfer {
namespace {

using testing::FakeBackend;
using testing::FakeModel;
using testing::FakeSequenceModel;
using testing::wait_until;

constexpr std::size_t kWidth = 3;

// Each result's outputs by tag, written by the one worker and read after `done` (acquire).
struct Outputs {
  explicit Outputs(std::size_t n) : status(n), version(n), ewma(n), count(n) {}
  static void on_result(void* self, const Result& r) {
    auto* o = static_cast<Outputs*>(self);
    o->status[r.tag] = r.status;
    o->version[r.tag] = r.model_version;
    if (r.status == ResultStatus::kOk) {
      o->ewma[r.tag] = r.outputs[0];
      o->count[r.tag] = r.outputs[1];
    }
    o->done.fetch_add(1, std::memory_order_release);
  }
  bool wait(std::size_t n) const {
    return wait_until([&] { return done.load(std::memory_order_acquire) == n; });
  }
  std::vector<ResultStatus> status;
  std::vector<std::uint64_t> version;
  std::vector<float> ewma, count;
  std::atomic<std::size_t> done{0};
};

struct Rig {
  explicit Rig(PipelineConfig config,
               std::shared_ptr<const Model> model = std::make_shared<FakeSequenceModel>(kWidth, 1))
      : slot(std::make_shared<ModelSlot>(std::move(model))),
        backend(std::make_shared<FakeBackend>()),
        pipeline(Pipeline::create(config, slot, backend)),
        producer(pipeline->make_producer()) {}

  SubmitStatus submit(InstrumentKey key, float x, Outputs& outputs, std::uint64_t tag) {
    const float features[kWidth] = {x, 0, 0};
    return pipeline->submit(producer, key, features, kNoDeadline, {&Outputs::on_result, &outputs, tag});
  }

  std::shared_ptr<ModelSlot> slot;
  std::shared_ptr<FakeBackend> backend;
  std::unique_ptr<Pipeline> pipeline;
  Producer producer;
};

PipelineConfig sequence_config(std::size_t keys, std::size_t max_batch) {
  PipelineConfig config;
  config.keys = keys;
  config.max_batch = max_batch;
  config.max_delay_us = 10'000'000;  // full batches: the worker waits for max_batch rows
  return config;
}

float feature_of(std::uint64_t i) { return static_cast<float>((i * 7919) % 97) * 0.25f - 3.0f; }

TEST(SequenceState, BatchedResultsEqualEachKeyRunAloneAtEveryBatchSizeWithKeysRepeatedInABatch) {
  constexpr std::size_t kKeys = 5;
  for (const std::size_t max_batch : {1u, 2u, 3u, 8u, 64u}) {
    Rig rig(sequence_config(kKeys, max_batch));
    const std::size_t n = max_batch * (max_batch == 64 ? 6 : 40);  // whole batches only
    Outputs got(n);
    std::vector<InstrumentKey> key_of(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      key_of[i] = static_cast<InstrumentKey>((i * i + 3 * i) % kKeys);  // uneven, repeats within every batch
      ASSERT_EQ(rig.submit(key_of[i], feature_of(i), got, i), SubmitStatus::kAccepted);
    }
    ASSERT_TRUE(got.wait(n)) << "max_batch " << max_batch;
    // The reference: each key's requests alone, one step at a time, in submission order.
    const FakeSequenceModel reference(kWidth, 1);
    std::vector<float> state(kKeys * 2, 0.0f);
    for (std::uint64_t i = 0; i < n; ++i) {
      const float in[kWidth + 2] = {feature_of(i), 0, 0, state[key_of[i] * 2], state[key_of[i] * 2 + 1]};
      float out[4];
      reference.step(in, out);
      state[key_of[i] * 2] = out[2];
      state[key_of[i] * 2 + 1] = out[3];
      ASSERT_EQ(got.status[i], ResultStatus::kOk) << "max_batch " << max_batch << ", request " << i;
      ASSERT_EQ(got.ewma[i], out[0]) << "max_batch " << max_batch << ", request " << i << " of key " << key_of[i];
      ASSERT_EQ(got.count[i], out[1]) << "max_batch " << max_batch << ", request " << i << " of key " << key_of[i];
    }
    const MetricsSnapshot m = rig.pipeline->metrics().snapshot();
    EXPECT_EQ(m.ok, n);
    if (max_batch > kKeys) {
      EXPECT_GT(rig.backend->forwards.load(), m.batches) << "a key repeated in a batch runs in a later forward";
    }
  }
}

// A new version published mid-stream (each version computes differently), while a batch is forming: every batch runs
// on one version, no request on an older version than one submitted before it, and the carried state makes each key's
// results equal its sequence stepped alone through the versions that served it, at every batch size.
TEST(SequenceState, BatchedResultsEqualEachKeyRunAloneAcrossAHotSwapAtEveryBatchSize) {
  constexpr std::size_t kKeys = 5;
  for (const std::size_t max_batch : {1u, 2u, 3u, 8u, 64u}) {
    PipelineConfig config = sequence_config(kKeys, max_batch);
    config.state_on_swap = StateOnSwap::kCarry;
    Rig rig(config);
    const std::size_t n = max_batch * (max_batch == 64 ? 6 : 40);
    const std::size_t publish_at = n / 2 + 1, ran_before = publish_at / max_batch * max_batch;
    Outputs got(n);
    std::vector<InstrumentKey> key_of(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      if (i == publish_at) {  // once the whole batches before it ran: mid-batch, the batch still forming
        ASSERT_TRUE(got.wait(ran_before));
        rig.slot->publish(std::make_shared<FakeSequenceModel>(kWidth, 2));
      }
      key_of[i] = static_cast<InstrumentKey>((i * i + 3 * i) % kKeys);
      ASSERT_EQ(rig.submit(key_of[i], feature_of(i), got, i), SubmitStatus::kAccepted);
    }
    ASSERT_TRUE(got.wait(n)) << "max_batch " << max_batch;
    const FakeSequenceModel v1(kWidth, 1), v2(kWidth, 2);
    std::vector<float> state(kKeys * 2, 0.0f);
    std::uint64_t on_v2 = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      ASSERT_EQ(got.status[i], ResultStatus::kOk) << "max_batch " << max_batch << ", request " << i;
      ASSERT_TRUE(got.version[i] == 1 || got.version[i] == 2) << got.version[i];
      if (i > 0) {
        ASSERT_GE(got.version[i], got.version[i - 1]) << "request " << i << " ran on an older version";
      }
      if (i < ran_before) {
        ASSERT_EQ(got.version[i], 1u) << "request " << i << " ran before the publish";
      }
      if (i >= ran_before + max_batch) {
        ASSERT_EQ(got.version[i], 2u) << "request " << i << " was submitted after the publish";
      }
      if (i % max_batch != 0) {
        ASSERT_EQ(got.version[i], got.version[i - 1]) << "a batch mixed versions";
      }
      on_v2 += got.version[i] == 2;
      const float in[kWidth + 2] = {feature_of(i), 0, 0, state[key_of[i] * 2], state[key_of[i] * 2 + 1]};
      float out[4];
      (got.version[i] == 1 ? v1 : v2).step(in, out);
      state[key_of[i] * 2] = out[2];
      state[key_of[i] * 2 + 1] = out[3];
      ASSERT_EQ(got.ewma[i], out[0]) << "max_batch " << max_batch << ", request " << i << " of key " << key_of[i];
      ASSERT_EQ(got.count[i], out[1]) << "max_batch " << max_batch << ", request " << i << " of key " << key_of[i];
    }
    EXPECT_GE(on_v2, n - ran_before - max_batch);
    EXPECT_EQ(rig.pipeline->metrics().snapshot().ok, n);
  }
}

TEST(SequenceState, AFailedRowLeavesItsKeysStateAsItWas) {
  Rig rig(sequence_config(2, 1));
  Outputs got(4);
  ASSERT_EQ(rig.submit(0, 1.0f, got, 0), SubmitStatus::kAccepted);
  ASSERT_EQ(rig.submit(0, FakeModel::kThrowOn, got, 1), SubmitStatus::kAccepted);
  ASSERT_EQ(rig.submit(0, 2.0f, got, 2), SubmitStatus::kAccepted);
  ASSERT_EQ(rig.submit(1, 4.0f, got, 3), SubmitStatus::kAccepted);
  ASSERT_TRUE(got.wait(4));
  EXPECT_EQ(got.status[1], ResultStatus::kModelError);
  EXPECT_EQ(got.count[2], 2.0f) << "the failed request did not count";
  EXPECT_EQ(got.ewma[2], 0.5f * 1.0f + 2.0f);
  EXPECT_EQ(got.count[3], 1.0f) << "key 1 has its own state";
  EXPECT_EQ(got.ewma[3], 4.0f);
}

TEST(SequenceState, ResetZeroesOneKeyOrEveryKeyBeforeTheRequestsSubmittedAfterIt) {
  PipelineConfig config = sequence_config(3, 4);
  config.max_delay_us = 0;
  Rig one(config);
  Outputs got(9);
  for (std::uint64_t i = 0; i < 3; ++i) ASSERT_EQ(one.submit(0, 1.0f, got, i), SubmitStatus::kAccepted);
  ASSERT_EQ(one.submit(1, 1.0f, got, 3), SubmitStatus::kAccepted);
  ASSERT_TRUE(got.wait(4));
  EXPECT_EQ(got.count[2], 3.0f);
  EXPECT_TRUE(one.pipeline->reset_state(0));
  ASSERT_EQ(one.submit(0, 1.0f, got, 4), SubmitStatus::kAccepted);
  ASSERT_EQ(one.submit(1, 1.0f, got, 5), SubmitStatus::kAccepted);
  ASSERT_TRUE(got.wait(6));
  EXPECT_EQ(got.count[4], 1.0f) << "key 0 started again from zeros";
  EXPECT_EQ(got.count[5], 2.0f) << "key 1 kept its state";
  EXPECT_TRUE(one.pipeline->reset_all_state());
  ASSERT_EQ(one.submit(0, 1.0f, got, 6), SubmitStatus::kAccepted);
  ASSERT_EQ(one.submit(1, 1.0f, got, 7), SubmitStatus::kAccepted);
  ASSERT_EQ(one.submit(2, 1.0f, got, 8), SubmitStatus::kAccepted);
  ASSERT_TRUE(got.wait(9));
  EXPECT_EQ(got.count[6], 1.0f);
  EXPECT_EQ(got.count[7], 1.0f);
  EXPECT_EQ(got.count[8], 1.0f);
  EXPECT_FALSE(one.pipeline->reset_state(3)) << "beyond keys";
  EXPECT_EQ(one.pipeline->state_width(), 2u);
}

// The reset applies from the requests submitted after it, even when those before and after share a batch (and a
// request already in flight when it comes keeps the state it gathered).
TEST(SequenceState, AResetTakesEffectExactlyFromTheRequestsSubmittedAfterItWithinOneBatch) {
  Rig rig(sequence_config(2, 8));  // one batch of 8: the worker waits for all of them
  Outputs got(8);
  ASSERT_EQ(rig.submit(0, 1.0f, got, 0), SubmitStatus::kAccepted);
  ASSERT_EQ(rig.submit(0, 1.0f, got, 1), SubmitStatus::kAccepted);
  ASSERT_EQ(rig.submit(1, 1.0f, got, 2), SubmitStatus::kAccepted);
  EXPECT_TRUE(rig.pipeline->reset_state(0));
  ASSERT_EQ(rig.submit(0, 1.0f, got, 3), SubmitStatus::kAccepted);
  ASSERT_EQ(rig.submit(1, 1.0f, got, 4), SubmitStatus::kAccepted);
  EXPECT_TRUE(rig.pipeline->reset_all_state());
  ASSERT_EQ(rig.submit(0, 1.0f, got, 5), SubmitStatus::kAccepted);
  ASSERT_EQ(rig.submit(1, 1.0f, got, 6), SubmitStatus::kAccepted);
  ASSERT_EQ(rig.submit(0, 1.0f, got, 7), SubmitStatus::kAccepted);
  ASSERT_TRUE(got.wait(8));
  const float expected[8] = {1, 2, 1, 1, 2, 1, 1, 2};  // each request's count
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(got.count[i], expected[i]) << "request " << i;
  EXPECT_EQ(rig.pipeline->metrics().snapshot().batches, 1u);
}

// A row that throws in one forward of a split batch fails alone: the later forwards of the batch run as forwards,
// not as retries of the failed one (they would otherwise spend its retry budget and fail unrun).
TEST(SequenceState, AThrowingRowInOneForwardOfASplitBatchFailsAloneAndEveryOtherRowRuns) {
  Rig rig(sequence_config(2, 64));  // two keys alternating: 32 forwards of 2 rows
  Outputs got(64);
  for (std::uint64_t i = 0; i < 64; ++i)
    ASSERT_EQ(rig.submit(static_cast<InstrumentKey>(i % 2), i == 1 ? FakeModel::kThrowOn : 1.0f, got, i),
              SubmitStatus::kAccepted);
  ASSERT_TRUE(got.wait(64));
  for (std::uint64_t i = 0; i < 64; ++i) {
    ASSERT_EQ(got.status[i], i == 1 ? ResultStatus::kModelError : ResultStatus::kOk) << "request " << i;
    if (i != 1) {
      EXPECT_EQ(got.count[i], static_cast<float>(i % 2 == 0 ? i / 2 + 1 : i / 2)) << "request " << i;
    }
  }
  const MetricsSnapshot m = rig.pipeline->metrics().snapshot();
  EXPECT_EQ(m.ok, 63u);
  EXPECT_EQ(m.model_errors, 1u);
}

// A published model whose state width differs cannot run on this pipeline's state: its requests fail with the
// reason until a model that fits is back, and the state is still there for it.
TEST(SequenceState, AModelWithAnotherStateWidthFailsItsRequestsWithTheReasonAndTheStateWaits) {
  PipelineConfig config = sequence_config(1, 4);
  config.max_delay_us = 0;
  Rig rig(config);
  Outputs got(3);
  ASSERT_EQ(rig.submit(0, 1.0f, got, 0), SubmitStatus::kAccepted);
  ASSERT_TRUE(got.wait(1));
  rig.slot->publish(std::make_shared<FakeSequenceModel>(kWidth, 2, std::vector<std::string>{"count", "ewma", "x"}));
  struct Failure {
    std::string text;
    std::atomic<int> done{0};
    static void on_result(void* self, const Result& r) {
      auto* e = static_cast<Failure*>(self);
      e->text = std::string(r.error);
      e->done.store(1, std::memory_order_release);
    }
  } failure;
  const float features[kWidth] = {1, 0, 0};
  ASSERT_EQ(rig.pipeline->submit(rig.producer, 0, features, kNoDeadline, {&Failure::on_result, &failure, 1}),
            SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return failure.done.load(std::memory_order_acquire) == 1; }));
  EXPECT_EQ(failure.text, "the model's state width differs from the pipeline's (fixed when it was created)");
  rig.slot->publish(std::make_shared<FakeSequenceModel>(kWidth, 3));
  ASSERT_EQ(rig.submit(0, 1.0f, got, 2), SubmitStatus::kAccepted);
  ASSERT_TRUE(got.wait(2));
  EXPECT_EQ(got.count[2], 1.0f) << "the names changed twice: the state started again from zeros";
}

TEST(SequenceState, ASwapCarriesTheStateWhenTheStateNamesMatchAndResetsItOtherwiseOrWhenAsked) {
  struct Case {
    StateOnSwap policy;
    std::vector<std::string> next_names;
    float expected_count;
  };
  for (const Case& c :
       {Case{StateOnSwap::kCarry, {"count", "ewma"}, 3.0f}, Case{StateOnSwap::kReset, {"count", "ewma"}, 1.0f},
        Case{StateOnSwap::kCarry, {"n", "ewma"}, 1.0f}}) {
    PipelineConfig config = sequence_config(1, 4);
    config.max_delay_us = 0;
    config.state_on_swap = c.policy;
    Rig rig(config);
    Outputs got(3);
    ASSERT_EQ(rig.submit(0, 1.0f, got, 0), SubmitStatus::kAccepted);
    ASSERT_EQ(rig.submit(0, 1.0f, got, 1), SubmitStatus::kAccepted);
    ASSERT_TRUE(got.wait(2));
    rig.slot->publish(std::make_shared<FakeSequenceModel>(kWidth, 2, c.next_names));
    ASSERT_EQ(rig.submit(0, 1.0f, got, 2), SubmitStatus::kAccepted);
    ASSERT_TRUE(got.wait(3));
    EXPECT_EQ(got.count[2], c.expected_count)
        << "policy " << static_cast<int>(c.policy) << ", names " << c.next_names[0];
  }
}

TEST(SequenceState, ASequenceModelNeedsKeysAndOneWorkerAndRefusesUnkeyedSubmits) {
  auto error_of = [](PipelineConfig config) {
    try {
      Rig rig(config);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(PipelineConfig{}),
            "pipeline: fake-sequence-v1 is a sequence model (state per instrument): it needs keyed submits "
            "(PipelineConfig::keys > 0)");
  PipelineConfig two = sequence_config(4, 8);
  two.workers = 2;
  EXPECT_EQ(error_of(two),
            "pipeline: fake-sequence-v1 is a sequence model: a key's ticks run in order on one worker, so workers "
            "must be 1");

  Rig rig(sequence_config(2, 1));
  Outputs got(1);
  const float features[kWidth] = {1, 0, 0};
  EXPECT_EQ(rig.pipeline->submit(rig.producer, features, kNoDeadline, {&Outputs::on_result, &got, 0}),
            SubmitStatus::kInvalid);
  EXPECT_EQ(rig.pipeline->submit(rig.producer, kNoKey, features, kNoDeadline, {&Outputs::on_result, &got, 0}),
            SubmitStatus::kInvalid);
  EXPECT_EQ(rig.pipeline->metrics().snapshot().invalid, 2u);

  // A stateless pipeline has no state to reset.
  auto stateless =
      Pipeline::create(PipelineConfig{}, std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1)),
                       std::make_shared<FakeBackend>());
  EXPECT_EQ(stateless->state_width(), 0u);
  EXPECT_FALSE(stateless->reset_state(0));
  EXPECT_FALSE(stateless->reset_all_state());
}

}  // namespace
}  // namespace tickinfer
