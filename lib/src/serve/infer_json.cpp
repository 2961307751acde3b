#include "serve/infer_json.hpp"

#include <algorithm>
#include <array>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

#include <nlohmann/json.hpp>

#include "tickinfer/error.hpp"

namespace tickinfer::internal {

namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxEcho = 64;          // bytes of a name, datatype or number echoed in a reason
constexpr std::size_t kMaxParseReason = 256;  // bytes of nlohmann's own message
constexpr std::size_t kMaxDims = 8;           // shape dimensions kept for the message (more are counted)

// 's', cut to kMaxEcho bytes at a character boundary ('s...').
std::string single_quoted(std::string_view s) {
  std::size_t n = std::min(s.size(), kMaxEcho);
  while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0u) == 0x80u) --n;
  std::string q = "'";
  q.append(s.substr(0, n));
  q += n < s.size() ? "...'" : "'";
  return q;
}

std::string number_text(std::uint64_t n) { return std::to_string(n); }

// "1 row", "2 rows".
std::string counted(std::uint64_t n, const char* noun) { return std::to_string(n) + " " + noun + (n == 1 ? "" : "s"); }

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629), or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
  const unsigned c = byte(i);
  const auto tail = [&](std::size_t k) { return (byte(k) & 0xC0u) == 0x80u; };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return tail(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned c1 = byte(i + 1);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)) return 0;  // overlong; surrogates
    return tail(i + 1) && tail(i + 2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned c1 = byte(i + 1);
    if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) return 0;  // overlong; beyond U+10FFFF
    return tail(i + 1) && tail(i + 2) && tail(i + 3) ? 4 : 0;
  }
  return 0;
}

// A reason as valid UTF-8, whatever bytes of the body it echoes (or a cut through a character): each byte that
// is not part of a well-formed sequence becomes "<FF>".
std::string well_formed(std::string reason) {
  std::size_t i = 0;
  while (i < reason.size() && utf8_length(reason, i) > 0) i += utf8_length(reason, i);
  if (i == reason.size()) return reason;  // the usual case: nothing to copy
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = reason.substr(0, i);
  while (i < reason.size()) {
    if (const std::size_t n = utf8_length(reason, i); n > 0) {
      out.append(reason, i, n);
      i += n;
    } else {
      const auto c = static_cast<unsigned char>(reason[i++]);
      out += '<';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      out += '>';
    }
  }
  return out;
}

enum class Kind : std::uint8_t { kNull, kBoolean, kNumber, kString, kObject, kArray, kBinary };

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kBoolean:
      return "a boolean";
    case Kind::kNumber:
      return "a number";
    case Kind::kString:
      return "a string";
    case Kind::kObject:
      return "an object";
    case Kind::kArray:
      return "an array";
    case Kind::kBinary:
      return "binary data";
  }
  return "a value";
}

// The containers the decoder walks into; every other container is skipped (counted, never stored).
enum class Frame : std::uint8_t { kTop, kInputs, kInput, kShape, kData, kDataRow, kOutputs, kOutput };

// What the value about to start is, from the frame it is in and, in an object, its key.
enum class Role : std::uint8_t {
  kRoot,
  kSkip,  // an unknown key's value, or an input after the first (only counted)
  kId,
  kTopParameters,
  kInputs,
  kOutputs,
  kInput,  // inputs[0]
  kName,
  kDatatype,
  kShape,
  kData,
  kInputParameters,
  kShapeDim,
  kValue,     // data[i]
  kRowValue,  // data[r][c]
  kOutput,
  kOutputName,
};

// Bits of the keys seen in each object, to refuse a repeated one.
enum : unsigned {
  kKeyId = 1,
  kKeyParameters = 2,
  kKeyInputs = 4,
  kKeyOutputs = 8,
  kKeyName = 16,
  kKeyDatatype = 32,
  kKeyShape = 64,
  kKeyData = 128,
};

// Rounds the JSON number `text` (nlohmann's token; `value`: its double) to the nearest float. False: outside
// float's range. Underflow rounds to a subnormal or zero, as the decimal's nearest float.
bool to_float(double value, const std::string& text, float& out) {
  const char* first = text.data();
  const char* last = first + text.size();
  std::from_chars_result result = std::from_chars(first, last, out);
  if (result.ec == std::errc() && result.ptr != last) {
    // nlohmann writes the C locale's decimal point into its token for strtod: a process with another LC_NUMERIC
    // gets e.g. "1,5". JSON numbers hold only digits, '-', '+', 'e', 'E' and the point.
    std::array<char, 128> buffer;
    if (text.size() <= buffer.size()) {
      for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        buffer[i] = (c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E' ? c : '.';
      }
      result = std::from_chars(buffer.data(), buffer.data() + text.size(), out);
      if (result.ec == std::errc() && result.ptr == buffer.data() + text.size()) return true;
    }
    result.ec = std::errc::invalid_argument;  // fall back to nlohmann's double below
  }
  if (result.ec == std::errc()) return true;
  if (result.ec == std::errc::result_out_of_range && std::fabs(value) < 1.0) {  // underflow
    out = static_cast<float>(value);
    return true;
  }
  if (!(std::fabs(value) <= static_cast<double>(FLT_MAX))) return false;
  out = static_cast<float>(value);
  return std::isfinite(out);
}

// A SAX handler for nlohmann::json::sax_parse: walks the request without building a document, storing the
// features straight into the request's vector. It never stops the parse on a semantic error (the first is kept),
// so a syntax error anywhere in the body is what the client hears first.
class Decoder {
 public:
  Decoder(const InferSpec& spec, InferRequest& request) : spec_(spec), request_(request) {
    cap_ = spec.input_width == 0 || spec.max_rows <= std::numeric_limits<std::size_t>::max() / spec.input_width
               ? spec.max_rows * spec.input_width
               : std::numeric_limits<std::size_t>::max();
  }

  // ---- nlohmann's SAX interface ----
  bool null() { return scalar(Kind::kNull); }
  bool boolean(bool /*value*/) { return scalar(Kind::kBoolean); }
  bool binary(Json::binary_t& /*value*/) { return scalar(Kind::kBinary); }

  bool number_integer(Json::number_integer_t value) {
    if (skip_ > 0) return true;
    const Role role = next_role();
    if (role == Role::kShapeDim) {
      if (value < 0) return fail(shape_path() + " is " + std::to_string(value) + ": expected a non-negative integer");
      return shape_dim(static_cast<std::uint64_t>(value));
    }
    if (role == Role::kValue || role == Role::kRowValue) return number(role, static_cast<float>(value));
    return mistyped(role, Kind::kNumber);
  }

  bool number_unsigned(Json::number_unsigned_t value) {
    if (skip_ > 0) return true;
    const Role role = next_role();
    if (role == Role::kShapeDim) return shape_dim(value);
    if (role == Role::kValue || role == Role::kRowValue) return number(role, static_cast<float>(value));
    return mistyped(role, Kind::kNumber);
  }

  bool number_float(Json::number_float_t value, const Json::string_t& text) {
    if (skip_ > 0) return true;
    const Role role = next_role();
    if (role == Role::kShapeDim) {
      return fail(shape_path() + " is " + std::string(text.substr(0, kMaxEcho)) + ": expected a non-negative integer");
    }
    if (role == Role::kValue || role == Role::kRowValue) {
      float f = 0.0f;
      if (!to_float(value, text, f)) {
        element_error(role, std::string(text.substr(0, kMaxEcho)) + " is not a finite FP32 number");
        f = 0.0f;
      }
      return number(role, f);
    }
    return mistyped(role, Kind::kNumber);
  }

  bool string(Json::string_t& value) {
    if (skip_ > 0) return true;
    const Role role = next_role();
    switch (role) {
      case Role::kId:
        request_.has_id = true;
        request_.id.assign(value);
        return true;
      case Role::kName:
        name_ok_ = value == spec_.input_name;
        if (!name_ok_) name_.assign(value, 0, kMaxEcho + 1);
        return true;
      case Role::kDatatype:
        fp32_ = value == "FP32";
        if (!fp32_) datatype_.assign(value, 0, kMaxEcho + 1);
        return true;
      case Role::kOutputName:
        return output_name(value);
      default:
        return mistyped(role, Kind::kString);
    }
  }

  bool start_object(std::size_t /*elements*/) {
    if (skip_ > 0) return ++skip_, true;
    const Role role = next_role();
    switch (role) {
      case Role::kRoot:
        return push(Frame::kTop);
      case Role::kInput:
        return push(Frame::kInput);
      case Role::kOutput:
        output_keys_ = 0;
        return push(Frame::kOutput);
      case Role::kTopParameters:
      case Role::kInputParameters:  // an object, as it must be; its contents are not read
        skip_ = 1;
        return true;
      default:
        skip_ = 1;
        return mistyped(role, Kind::kObject);
    }
  }

  bool start_array(std::size_t /*elements*/) {
    if (skip_ > 0) return ++skip_, true;
    const Role role = next_role();
    switch (role) {
      case Role::kInputs:
        has_inputs_ = true;
        return push(Frame::kInputs);
      case Role::kOutputs:
        return push(Frame::kOutputs);
      case Role::kShape:
        return push(Frame::kShape);
      case Role::kData:
        return push(Frame::kData);
      case Role::kValue:  // a row of nested data
        if (top_arrays_++ == 0) first_array_ = element_;
        row_ = element_;
        row_length_ = 0;
        return push(Frame::kDataRow);
      case Role::kRowValue:
        skip_ = 1;
        element_error(role, "is an array: data nests at most two deep ([rows][width])");
        return true;
      default:
        skip_ = 1;
        return mistyped(role, Kind::kArray);
    }
  }

  bool key(Json::string_t& key) {
    if (skip_ > 0) return true;
    pending_ = Role::kSkip;
    switch (stack_[depth_ - 1]) {
      case Frame::kTop:
        if (key == "id") return field(top_keys_, kKeyId, Role::kId, "the request", key);
        if (key == "parameters") return field(top_keys_, kKeyParameters, Role::kTopParameters, "the request", key);
        if (key == "inputs") return field(top_keys_, kKeyInputs, Role::kInputs, "the request", key);
        if (key == "outputs") return field(top_keys_, kKeyOutputs, Role::kOutputs, "the request", key);
        return true;
      case Frame::kInput:
        if (key == "name") return field(input_keys_, kKeyName, Role::kName, "inputs[0]", key);
        if (key == "datatype") return field(input_keys_, kKeyDatatype, Role::kDatatype, "inputs[0]", key);
        if (key == "shape") return field(input_keys_, kKeyShape, Role::kShape, "inputs[0]", key);
        if (key == "data") return field(input_keys_, kKeyData, Role::kData, "inputs[0]", key);
        if (key == "parameters") return field(input_keys_, kKeyParameters, Role::kInputParameters, "inputs[0]", key);
        return true;
      case Frame::kOutput:
        if (key == "name") return field(output_keys_, kKeyName, Role::kOutputName, output_path().c_str(), key);
        return true;
      default:
        return true;  // keys come only in objects
    }
  }

  bool end_object() {
    if (skip_ > 0) return --skip_, true;
    const Frame frame = stack_[--depth_];
    if (frame == Frame::kOutput && (output_keys_ & kKeyName) == 0) return fail(output_path() + " has no \"name\"");
    return true;
  }

  bool end_array() {
    if (skip_ > 0) return --skip_, true;
    const Frame frame = stack_[--depth_];
    if (frame == Frame::kDataRow && row_length_ != spec_.input_width && !bad_row_) {
      bad_row_ = true;
      bad_row_index_ = row_;
      bad_row_length_ = row_length_;
    }
    return true;
  }

  bool parse_error(std::size_t position, const std::string& last_token, const nlohmann::detail::exception& e) {
    // A number beyond double's range (nlohmann refuses it as out_of_range.406) inside the data: a data error.
    if (e.id == 406 && skip_ == 0 && depth_ > 0 &&
        (stack_[depth_ - 1] == Frame::kData || stack_[depth_ - 1] == Frame::kDataRow)) {
      const bool row = stack_[depth_ - 1] == Frame::kDataRow;
      syntax_error_ = data_path(row ? row_ : elements_, row ? row_length_ : 0, row) + ": " +
                      last_token.substr(0, kMaxEcho) + " is not a finite FP32 number";
      return false;
    }
    std::string_view what = e.what();
    if (what.rfind("[json.exception.", 0) == 0 && what.find("] ") != std::string_view::npos) {
      what.remove_prefix(what.find("] ") + 2);
    }
    syntax_error_ =
        "malformed JSON at byte " + number_text(position) + ": " + std::string(what.substr(0, kMaxParseReason));
    return false;
  }

  // ---- after the parse ----
  const std::string& syntax_error() const { return syntax_error_; }

  std::optional<std::string> finish() {
    if (error_) return error_;
    if (!has_inputs_) return "the request has no \"inputs\"";
    if (inputs_ != 1) {
      return "expected exactly one input (" + single_quoted(spec_.input_name) + "), got " + number_text(inputs_);
    }
    if ((input_keys_ & kKeyName) == 0) return "inputs[0] has no \"name\"";
    if (!name_ok_) return "unknown input " + single_quoted(name_) + " (known: " + single_quoted(spec_.input_name) + ")";
    // The reasons are built only on refusal: an accepted request allocates nothing here.
    const auto input = [&] { return "input " + single_quoted(spec_.input_name); };
    if ((input_keys_ & kKeyDatatype) == 0) return input() + " has no \"datatype\"";
    if (!fp32_) return input() + " has datatype " + single_quoted(datatype_) + ": only FP32 is supported";
    if ((input_keys_ & kKeyShape) == 0) return input() + " has no \"shape\"";
    const auto shape = [&] {
      std::string text = "[";
      for (std::size_t i = 0; i < std::min(rank_, kMaxDims); ++i) {
        if (i > 0) text += ", ";
        text += number_text(dims_[i]);
      }
      text += rank_ > kMaxDims ? ", ...]" : "]";
      return text;
    };
    const auto has_shape = [&] { return input() + " has shape " + shape(); };
    if (rank_ != 1 && rank_ != 2) {
      return has_shape() + ": expected [rows, " + number_text(spec_.input_width) + "] or [" +
             number_text(spec_.input_width) + "]";
    }
    const std::uint64_t width = dims_[rank_ - 1];
    const std::uint64_t rows = rank_ == 2 ? dims_[0] : 1;
    if (width != spec_.input_width) {
      return has_shape() + ": width " + number_text(width) + ", the model's is " + number_text(spec_.input_width);
    }
    if (rows == 0) return has_shape() + ": zero rows";
    if (rows > spec_.max_rows) {
      return input() + " has " + counted(rows, "row") + ", more than the limit of " + number_text(spec_.max_rows);
    }
    if ((input_keys_ & kKeyData) == 0) return input() + " has no \"data\"";
    if (element_error_) return element_error_;
    if (top_arrays_ > 0 && top_numbers_ > 0) {
      return input() + ": data mixes numbers and arrays (data[" + number_text(first_number_) + "] is a number, data[" +
             number_text(first_array_) + "] an array)";
    }
    if (top_arrays_ > 0) {
      if (rank_ == 1) return has_shape() + ": data nested in rows needs shape [rows, width]";
      if (top_arrays_ != rows) {
        return input() + ": data has " + counted(top_arrays_, "row") + ", shape " + shape() + " needs " +
               number_text(rows);
      }
      if (bad_row_) {
        return input() + ": data[" + number_text(bad_row_index_) + "] has " + counted(bad_row_length_, "value") +
               ", shape " + shape() + " needs " + number_text(width);
      }
    }
    const std::uint64_t needed = rows * width;  // <= max_rows * input_width: no overflow past cap_
    if (count_ != needed) {
      return input() + " has " + counted(count_, "value") + " in data, shape " + shape() + " needs " +
             number_text(needed);
    }
    request_.rows = static_cast<std::size_t>(rows);
    if (request_.outputs.empty()) {
      for (std::size_t i = 0; i < spec_.outputs.size(); ++i) request_.outputs.push_back(i);
    }
    return std::nullopt;
  }

 private:
  // The role of the value that starts now. Call exactly once per value, at its first event.
  Role next_role() {
    if (depth_ == 0) return Role::kRoot;
    switch (stack_[depth_ - 1]) {
      case Frame::kTop:
      case Frame::kInput:
      case Frame::kOutput:
        return pending_;
      case Frame::kInputs:
        return inputs_++ == 0 ? Role::kInput : Role::kSkip;
      case Frame::kShape:
        return Role::kShapeDim;
      case Frame::kData:
        element_ = elements_++;
        return Role::kValue;
      case Frame::kDataRow:
        column_ = row_length_++;
        return Role::kRowValue;
      case Frame::kOutputs:
        output_ = outputs_++;
        return Role::kOutput;
    }
    return Role::kSkip;
  }

  bool push(Frame frame) {
    if (depth_ == stack_.size()) return fail("internal error: request nesting");  // unreachable: others are skipped
    stack_[depth_++] = frame;
    return true;
  }

  bool fail(std::string message) {
    if (!error_) error_ = std::move(message);
    return true;  // keep parsing: a syntax error later in the body is reported first
  }

  bool field(unsigned& seen, unsigned bit, Role role, const char* where, const std::string& key) {
    if ((seen & bit) != 0) return fail(std::string(where) + " has a duplicate key \"" + key + "\"");
    seen |= bit;
    pending_ = role;
    return true;
  }

  bool scalar(Kind kind) {
    if (skip_ > 0) return true;
    return mistyped(next_role(), kind);
  }

  bool shape_dim(std::uint64_t value) {
    if (rank_ < kMaxDims) dims_[rank_] = value;
    ++rank_;
    return true;
  }

  bool number(Role role, float value) {
    if (role == Role::kValue && top_numbers_++ == 0) first_number_ = element_;
    if (request_.values.size() < cap_) request_.values.push_back(value);
    ++count_;
    return true;
  }

  std::string data_path(std::size_t element, std::size_t column, bool row) const {
    std::string path = "inputs[0].data[" + number_text(element) + "]";
    if (row) path += "[" + number_text(column) + "]";
    return path;
  }

  void element_error(Role role, const std::string& what) {
    if (element_error_) return;
    const bool row = role == Role::kRowValue;
    element_error_ = data_path(row ? row_ : element_, column_, row) + (what.rfind("is ", 0) == 0 ? " " : ": ") + what;
  }

  std::string shape_path() const { return "inputs[0].shape[" + number_text(rank_) + "]"; }
  std::string output_path() const { return "outputs[" + number_text(output_) + "]"; }

  // A value of the wrong type for its role (containers are skipped by the caller).
  bool mistyped(Role role, Kind kind) {
    const std::string got = std::string(", got ") + kind_name(kind);
    switch (role) {
      case Role::kSkip:
        return true;
      case Role::kRoot:
        return fail("the request must be a JSON object" + got);
      case Role::kId:
        return fail("\"id\" must be a string" + got);
      case Role::kTopParameters:
        return fail("\"parameters\" must be an object" + got);
      case Role::kInputs:
        return fail("\"inputs\" must be an array" + got);
      case Role::kOutputs:
        return fail("\"outputs\" must be an array" + got);
      case Role::kInput:
        return fail("inputs[0] must be an object" + got);
      case Role::kName:
        return fail("inputs[0].name must be a string" + got);
      case Role::kDatatype:
        return fail("inputs[0].datatype must be a string" + got);
      case Role::kShape:
        return fail("inputs[0].shape must be an array" + got);
      case Role::kData:
        return fail("inputs[0].data must be an array" + got);
      case Role::kInputParameters:
        return fail("inputs[0].parameters must be an object" + got);
      case Role::kShapeDim:
        return fail(shape_path() + " is " + kind_name(kind) + ": expected a non-negative integer");
      case Role::kValue:
      case Role::kRowValue:
        element_error(role, std::string("is ") + kind_name(kind) + ", not a number");
        return true;
      case Role::kOutput:
        return fail(output_path() + " must be an object" + got);
      case Role::kOutputName:
        return fail(output_path() + ".name must be a string" + got);
    }
    return true;
  }

  bool output_name(const std::string& name) {
    for (std::size_t i = 0; i < spec_.outputs.size(); ++i) {
      if (spec_.outputs[i].name != name) continue;
      if (std::find(request_.outputs.begin(), request_.outputs.end(), i) != request_.outputs.end()) {
        return fail("output " + single_quoted(name) + " is requested twice");
      }
      request_.outputs.push_back(i);
      return true;
    }
    std::string known;
    for (const InferTensorSpec& output : spec_.outputs) {
      if (!known.empty()) known += ", ";
      known += single_quoted(output.name);
    }
    return fail("unknown output " + single_quoted(name) + " (known: " + (known.empty() ? "none" : known) + ")");
  }

  const InferSpec& spec_;
  InferRequest& request_;
  std::size_t cap_ = 0;  // values stored at most: max_rows * input_width

  std::array<Frame, 6> stack_{};  // the deepest walk: top, inputs, input, data, row
  std::size_t depth_ = 0;
  std::size_t skip_ = 0;  // > 0: inside a skipped container, this deep
  Role pending_ = Role::kSkip;

  std::optional<std::string> error_;          // the first semantic error
  std::optional<std::string> element_error_;  // the first bad value in data (reported after the shape checks)
  std::string syntax_error_;

  unsigned top_keys_ = 0, input_keys_ = 0, output_keys_ = 0;
  bool has_inputs_ = false;
  std::size_t inputs_ = 0, outputs_ = 0, output_ = 0;
  bool name_ok_ = false, fp32_ = false;
  std::string name_, datatype_;  // as sent, only when refused
  std::array<std::uint64_t, kMaxDims> dims_{};
  std::size_t rank_ = 0;

  std::size_t elements_ = 0, element_ = 0;  // data's top-level elements; the current one
  std::size_t top_numbers_ = 0, first_number_ = 0, top_arrays_ = 0, first_array_ = 0;
  std::size_t row_ = 0, row_length_ = 0, column_ = 0;  // the nested row being read
  bool bad_row_ = false;
  std::size_t bad_row_index_ = 0, bad_row_length_ = 0;
  std::size_t count_ = 0;  // numbers in data, stored or not
};

void append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xF];
          out += kHex[static_cast<unsigned char>(c) & 0xF];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void append_unsigned(std::string& out, std::uint64_t value) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

void append_float(std::string& out, float value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  if (value == 0.0f && std::signbit(value)) {  // "-0" would read back as the integer 0
    out += "-0.0";
    return;
  }
  char buffer[32];  // the longest shortest float, "-1.17549435e-38", is 15
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

}  // namespace

std::optional<std::string> decode_infer_request(std::string_view body, const InferSpec& spec, InferRequest& request) {
  request.values.clear();
  request.rows = 0;
  request.has_id = false;
  request.id.clear();
  request.outputs.clear();
  Decoder decoder(spec, request);
  if (!Json::sax_parse(body.begin(), body.end(), &decoder)) {
    if (decoder.syntax_error().empty()) return "malformed JSON";  // unreachable: the decoder never stops it
    return well_formed(decoder.syntax_error());
  }
  std::optional<std::string> error = decoder.finish();
  if (error) error = well_formed(std::move(*error));
  return error;
}

void encode_infer_response(std::string& out, std::string_view model_name, std::uint64_t model_version,
                           std::optional<std::string_view> id, std::size_t rows, std::span<const InferOutput> outputs) {
  std::size_t size = out.size() + 64 + model_name.size() + (id ? id->size() + 8 : 0);
  for (const InferOutput& output : outputs) {
    if (output.data.size() != rows * output.width) {
      throw Error(ErrorCode::kShapeMismatch, "output '" + std::string(output.name) + "' has " +
                                                 std::to_string(output.data.size()) + " values, shape [" +
                                                 std::to_string(rows) + ", " + std::to_string(output.width) +
                                                 "] needs " + std::to_string(rows * output.width));
    }
    size += 80 + output.name.size() + output.data.size() * 16;
  }
  out.reserve(size);  // never shrinks: a reused string allocates only when a response outgrows it

  out += "{\"model_name\":";
  append_escaped(out, model_name);
  out += ",\"model_version\":\"";
  append_unsigned(out, model_version);
  out += '"';
  if (id) {
    out += ",\"id\":";
    append_escaped(out, *id);
  }
  out += ",\"outputs\":[";
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    const InferOutput& output = outputs[o];
    if (o > 0) out += ',';
    out += "{\"name\":";
    append_escaped(out, output.name);
    out += ",\"datatype\":\"FP32\",\"shape\":[";
    append_unsigned(out, rows);
    out += ',';
    append_unsigned(out, output.width);
    out += "],\"data\":[";
    for (std::size_t i = 0; i < output.data.size(); ++i) {
      if (i > 0) out += ',';
      append_float(out, output.data[i]);
    }
    out += "]}";
  }
  out += "]}";
}

}  // namespace tickinfer::internal
