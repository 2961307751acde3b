// MoldUDP64 datagrams through one feed::MoldReceiver, checking its invariants after every datagram.
// Input: flags byte (bit 0: MoldReceiverOptions::first_sequence 1, else 0), then datagrams, each a 2-byte
// little-endian length (clamped to what is left) and that many bytes.
// Invariants: delivered sequences strictly increase (restarting only at a session change) and run contiguous
// inside a datagram; each message lies inside its datagram and is non-empty; a malformed datagram delivers
// nothing and changes neither the expected sequence nor the session; packets = malformed + heartbeats + end of
// session + data packets; message blocks of well-formed data packets = delivered + duplicate messages.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

#include "fuzz_support.hpp"
#include "tickinfer/feed/moldudp64.hpp"

using namespace tickinfer;

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "moldudp64 fuzz: invariant violated: %s\n", what);
  std::abort();
}

inline void require(bool ok, const char* what) {
  if (!ok) violated(what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = fuzz::split_flags(data, size);
  // Flag bit 0: sessions start at 1 (else joined mid-stream); bit 1: max_gap 64 (a far packet is refused).
  feed::MoldReceiver rx(feed::MoldReceiverOptions{(in.flags & 1) ? 1u : 0u, (in.flags & 2) ? 64u : 0u});
  std::string_view rest = in.rest;
  std::uint64_t blocks = 0;  // message blocks of well-formed data packets
  std::uint64_t last = 0;    // last sequence delivered in the current session
  bool any = false;          // something was delivered in the current session
  while (!rest.empty()) {
    std::size_t n = static_cast<std::uint8_t>(rest[0]);
    if (rest.size() >= 2) n |= static_cast<std::size_t>(static_cast<std::uint8_t>(rest[1])) << 8;
    rest.remove_prefix(rest.size() >= 2 ? 2 : 1);
    if (n > rest.size()) n = rest.size();
    const std::span<const unsigned char> d(reinterpret_cast<const unsigned char*>(rest.data()), n);
    rest.remove_prefix(n);

    const std::uint64_t expected_before = rx.next_expected();
    const feed::MoldSession session_before = rx.session();
    std::uint64_t delivered = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t prev = 0;
    const auto r = rx.receive(d, [&](std::uint64_t seq, std::span<const unsigned char> m) {
      require(!m.empty(), "empty message delivered");
      require(m.data() >= d.data() && m.data() + m.size() <= d.data() + d.size(), "message outside its datagram");
      if (delivered == 0) first_seq = seq;
      require(delivered == 0 || seq == prev + 1, "sequences not contiguous inside a datagram");
      prev = seq;
      ++delivered;
    });
    const auto& st = rx.stats();
    require(r.delivered == delivered, "result.delivered differs from the callbacks");
    require(st.packets == st.malformed_packets + st.too_far_ahead_packets + st.heartbeats + st.end_of_session_packets +
                              st.data_packets,
            "packet kinds do not add up");
    if (r.status == feed::MoldStatus::kTooFarAhead) {
      require((in.flags & 2) != 0, "refused as too far ahead without max_gap");
      require(delivered == 0, "a packet refused as too far ahead delivered messages");
      require(rx.next_expected() == expected_before, "a packet refused as too far ahead moved the sequence");
      require(rx.session() == session_before, "a packet refused as too far ahead changed the session");
      require(r.sequence - r.gap_from > 64, "refused within max_gap");
    } else if (r.status == feed::MoldStatus::kMalformed) {
      require(delivered == 0, "a malformed datagram delivered messages");
      require(rx.next_expected() == expected_before, "a malformed datagram moved the expected sequence");
      require(rx.session() == session_before, "a malformed datagram changed the session");
      require(r.reason.size() > 7 && r.reason.substr(0, 7) == "offset ", "malformed without a located reason");
      require(r.offset <= d.size(), "malformed offset outside the datagram");
    } else if (r.kind == feed::MoldPacketKind::kMessages) {
      blocks += r.count;
      require(r.delivered + r.duplicates == r.count, "delivered + duplicates != count");
    } else {
      require(delivered == 0, "a heartbeat or end of session delivered messages");
    }
    require(blocks == st.messages + st.duplicate_messages, "blocks != messages + duplicate messages");
    if (r.status == feed::MoldStatus::kGap) require(r.gap_from <= r.gap_to, "gap range reversed");
    if (r.session_changed) any = false;
    if (delivered > 0) {
      require(!any || first_seq > last, "delivered sequences not strictly increasing");
      require(rx.next_expected() == prev + 1, "next_expected is not just past the last delivered");
      last = prev;
      any = true;
    }
  }
  return 0;
}
