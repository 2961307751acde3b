#pragma once
// The prediction records tickinfer-serve sends (UDP datagrams of whole records, and a TCP byte stream of them):
// fixed size for a given model, little-endian, documented in docs/SERVE.md. Header-only, for subscribers.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace tickinfer {

static_assert(std::endian::native == std::endian::little, "prediction records are little-endian, as this host");

inline constexpr std::uint32_t kPredictionRecordMagic = 0x52504954;  // "TIPR" in the record's first 4 bytes
inline constexpr std::uint16_t kPredictionRecordLayout = 1;

/// 64 bytes, then output_count float32 outputs (zeros unless status is 0, kOk).
struct PredictionRecordHeader {
  std::uint32_t magic;          // kPredictionRecordMagic
  std::uint16_t layout;         // kPredictionRecordLayout
  std::uint16_t output_count;   // floats after the header
  std::uint32_t key;            // the instrument: ITCH stock locate, or the capture record's symbol id
  std::uint32_t status;         // tickinfer::ResultStatus (0 ok)
  std::uint64_t feed_sequence;  // the MoldUDP64 sequence number of the message behind the prediction
  std::int64_t event_ns;        // the event's own timestamp (ITCH: ns after midnight)
  std::int64_t receive_ns;      // when its datagram was received (tickinfer::now_ns(): CLOCK_MONOTONIC)
  std::int64_t prediction_ns;   // when the model's batch ended (same clock)
  std::uint64_t model_version;  // the version that produced the outputs
  std::array<char, 8> symbol;   // ITCH stock symbol, space-padded; zeros when not (yet) in the directory
};
static_assert(sizeof(PredictionRecordHeader) == 64, "the record layout is part of the wire format");

constexpr std::size_t prediction_record_bytes(std::size_t output_count) noexcept {
  return sizeof(PredictionRecordHeader) + 4 * output_count;
}

/// Writes one record (header, then `outputs` padded with zeros to output_count floats) at `out`, which has
/// prediction_record_bytes(output_count) bytes.
inline void write_prediction_record(const PredictionRecordHeader& header, std::span<const float> outputs,
                                    unsigned char* out, std::size_t output_count) noexcept {
  std::memcpy(out, &header, sizeof header);
  unsigned char* o = out + sizeof header;
  const std::size_t n = outputs.size() < output_count ? outputs.size() : output_count;
  if (n > 0) std::memcpy(o, outputs.data(), 4 * n);
  if (n < output_count) std::memset(o + 4 * n, 0, 4 * (output_count - n));
}

/// Reads the record at `in` (prediction_record_bytes(header.output_count) bytes): the header, and up to
/// outputs.size() of its outputs.
inline void read_prediction_record(const unsigned char* in, PredictionRecordHeader& header,
                                   std::span<float> outputs) noexcept {
  std::memcpy(&header, in, sizeof header);
  const std::size_t n = outputs.size() < header.output_count ? outputs.size() : header.output_count;
  if (n > 0) std::memcpy(outputs.data(), in + sizeof header, 4 * n);
}

}  // namespace tickinfer
