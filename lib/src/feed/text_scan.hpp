#pragma once
// Allocation-free CSV field scanning for the text feed readers: std::from_chars for integers and a
// hand-rolled exact decimal-to-fixed-point parser (no iostreams, no locale, no floating point).

#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

namespace tickinfer::feed::detail {

/// Where a field scan stopped.
enum class FieldError : std::uint8_t { kNone, kMissing, kBadNumber, kExtra };

/// A cursor over one line (without its line terminator).
struct LineCursor {
  const char* p;
  const char* end;
  int field = 0;  // 0-based index of the next field
  FieldError error = FieldError::kNone;
  int error_field = -1;

  bool at_end() const noexcept { return p == end; }

  // After a value ends at `stop`: accept a following ',' (not on the last field) or the line end.
  bool finish_field(const char* stop, bool last) noexcept {
    if (stop == end) {
      p = end;
      if (!last) return fail(FieldError::kMissing, field + 1);  // blame the first absent field
      ++field;
      return true;
    }
    if (*stop == ',') {
      if (last) return fail(FieldError::kExtra);
      p = stop + 1;
      ++field;
      return true;
    }
    return fail(FieldError::kBadNumber);
  }
  bool fail(FieldError e) noexcept { return fail(e, field); }
  bool fail(FieldError e, int at) noexcept {
    if (error == FieldError::kNone) {
      error = e;
      error_field = at;
    }
    return false;
  }

  /// A base-10 integer field.
  template <typename T>
  bool integer(T& out, bool last = false) noexcept {
    const auto [stop, ec] = std::from_chars(p, end, out);
    if (ec != std::errc{}) return fail(FieldError::kBadNumber);  // empty, not a number, or out of range
    return finish_field(stop, last);
  }

  /// "[-]digits[.digits]" scaled by 10^decimals, exactly: fails on overflow or on a nonzero digit
  /// beyond `decimals` (which a float parse would round away). Empty allowed when allow_empty (-> 0).
  bool fixed(std::int64_t& out, int decimals, bool last = false, bool allow_empty = false) noexcept {
    const char* q = p;
    if (allow_empty && (q == end || *q == ',')) {
      out = 0;
      return finish_field(q, last);
    }
    bool negative = false;
    if (q != end && *q == '-') {
      negative = true;
      ++q;
    }
    std::uint64_t v = 0;
    bool any_digit = false;
    for (; q != end && static_cast<unsigned>(*q - '0') < 10; ++q) {
      any_digit = true;
      if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, static_cast<unsigned>(*q - '0'), &v)) {
        return fail(FieldError::kBadNumber);
      }
    }
    int frac = 0;
    if (q != end && *q == '.') {
      ++q;
      for (; q != end && static_cast<unsigned>(*q - '0') < 10; ++q) {
        any_digit = true;
        const unsigned digit = static_cast<unsigned>(*q - '0');
        if (frac < decimals) {
          if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, digit, &v)) {
            return fail(FieldError::kBadNumber);
          }
          ++frac;
        } else if (digit != 0) {
          return fail(FieldError::kBadNumber);  // precision the scale cannot hold
        }
      }
    }
    if (!any_digit) return fail(FieldError::kBadNumber);
    for (; frac < decimals; ++frac) {
      if (__builtin_mul_overflow(v, 10u, &v)) return fail(FieldError::kBadNumber);
    }
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return fail(FieldError::kBadNumber);
    out = negative ? -static_cast<std::int64_t>(v) : static_cast<std::int64_t>(v);
    return finish_field(q, last);
  }

  /// A raw text field (up to the next ',').
  bool text(std::string_view& out, bool last = false) noexcept {
    const char* stop = static_cast<const char*>(std::memchr(p, ',', static_cast<std::size_t>(end - p)));
    if (stop == nullptr) stop = end;
    out = std::string_view(p, static_cast<std::size_t>(stop - p));
    return finish_field(stop, last);
  }
};

/// The line starting at `pos`: [pos, line_end) without "\n" or "\r\n"; `next` is where the following
/// line starts; `terminated` is false when the input ends without a newline.
struct Line {
  const char* begin;
  const char* end;
  const char* next;
  bool terminated;
};

inline Line next_line(const char* pos, const char* input_end) noexcept {
  const char* nl = static_cast<const char*>(std::memchr(pos, '\n', static_cast<std::size_t>(input_end - pos)));
  Line line{pos, nl ? nl : input_end, nl ? nl + 1 : input_end, nl != nullptr};
  if (line.end != line.begin && line.end[-1] == '\r') --line.end;
  return line;
}

/// "field 3 (price)" style text for reports.
inline std::string describe_field(const LineCursor& c, const char* const* names, int count) {
  std::string s = "field " + std::to_string(c.error_field + 1);
  if (c.error_field >= 0 && c.error_field < count) s += std::string(" (") + names[c.error_field] + ")";
  return s;
}

/// The line, shortened, for reports. Bytes outside printable ASCII show as \xNN, so a report of binary junk
/// is plain text (a terminal, a JSON report).
inline std::string excerpt(const char* begin, const char* end) {
  constexpr std::size_t kMax = 80;
  const auto n = static_cast<std::size_t>(end - begin);
  std::string s;  // appended piecewise: "'" + std::string(...) trips a GCC 12 -Wrestrict false positive
  s.reserve(kMax + 5);
  s.push_back('\'');
  for (std::size_t i = 0; i < (n < kMax ? n : kMax); ++i) {
    const auto c = static_cast<unsigned char>(begin[i]);
    if (c >= 0x20 && c < 0x7f) {
      s.push_back(static_cast<char>(c));
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      s.append("\\x");
      s.push_back(kHex[c >> 4]);
      s.push_back(kHex[c & 0xf]);
    }
  }
  s.append(n > kMax ? "...'" : "'");
  return s;
}

}  // namespace tickinfer::feed::detail
