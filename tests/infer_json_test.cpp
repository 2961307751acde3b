// The KServe v2 inference JSON bodies (serve/infer_json.*): every refusal's exact reason, flat and nested data,
// bit-exact float round trips through the encoder and the decoder, the rows bound, and what each call allocates.

#include "serve/infer_json.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "support/count_new.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/model.hpp"

namespace tickinfer::internal {
namespace {

using testing::CountNew;

// Seeded randomized tests print their seed; TICKINFER_SEED=<n> replays one.
std::uint64_t test_seed() {
  const char* env = std::getenv("TICKINFER_SEED");
  const std::uint64_t seed = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::printf("seed %llu (replay with TICKINFER_SEED=%llu)\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  return seed;
}

// A model of 4 features and two outputs; at most 8 rows a request.
InferSpec spec() {
  InferSpec s;
  s.input_width = 4;
  s.outputs = {{"outputs", 2}, {"state", 3}};
  s.max_rows = 8;
  return s;
}

// A request of one input with the given fields (raw JSON text).
std::string request(std::string_view shape, std::string_view data, std::string_view name = "\"features\"",
                    std::string_view datatype = "\"FP32\"") {
  return std::string(R"({"inputs":[{"name":)") + std::string(name) + R"(,"shape":)" + std::string(shape) +
         R"(,"datatype":)" + std::string(datatype) + R"(,"data":)" + std::string(data) + "}]}";
}

// What decoding `body` answers: "ok" or the reason.
std::string reason(std::string_view body, const InferSpec& s = spec()) {
  InferRequest decoded;
  const auto error = decode_infer_request(body, s, decoded);
  return error ? *error : "ok";
}

InferRequest decode_ok(std::string_view body, const InferSpec& s = spec()) {
  InferRequest decoded;
  const auto error = decode_infer_request(body, s, decoded);
  EXPECT_FALSE(error) << *error << "\nbody: " << body;
  return decoded;
}

class TwoFeatureModel final : public Model {
 public:
  TwoFeatureModel() : Model(metadata(), 5, "test.pt", "native") {}

 private:
  static ModelMetadata metadata() {
    ModelMetadata md;
    md.format_version = kMetadataFormatVersion;
    md.name = "m";
    md.version = 5;
    md.input_names = {"a", "b"};
    md.output_names = {"y0", "y1", "y2"};
    return md;
  }
};

TEST(InferJsonSpec, ForAModelAsItsMetadataAnnouncesIt) {
  const InferSpec s = infer_spec_for(TwoFeatureModel(), 64);
  EXPECT_EQ(s.input_name, "features");
  EXPECT_EQ(s.input_width, 2u);
  ASSERT_EQ(s.outputs.size(), 1u);
  EXPECT_EQ(s.outputs[0].name, "outputs");
  EXPECT_EQ(s.outputs[0].width, 3u);
  EXPECT_EQ(s.max_rows, 64u);
}

// ---- accepted requests ----

TEST(InferJsonDecode, FlatDataIsRowMajor) {
  const InferRequest r = decode_ok(request("[2,4]", "[1,2,3,4,5,6,7,8.5]"));
  EXPECT_EQ(r.rows, 2u);
  EXPECT_EQ(r.values, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8.5f}));
  EXPECT_FALSE(r.has_id);
  EXPECT_EQ(r.outputs, (std::vector<std::size_t>{0, 1}));  // none asked: all of them, in the model's order
}

TEST(InferJsonDecode, NestedDataEqualsFlatData) {
  const InferRequest flat = decode_ok(request("[3,4]", "[1,2,3,4,5,6,7,8,9,10,11,-12e-1]"));
  const InferRequest nested = decode_ok(request("[3,4]", "[[1,2,3,4],[5,6,7,8],[9,10,11,-12e-1]]"));
  EXPECT_EQ(nested.rows, 3u);
  EXPECT_EQ(nested.values, flat.values);
  const InferRequest one = decode_ok(request("[1,4]", "[[1,2,3,4]]"));
  EXPECT_EQ(one.values, (std::vector<float>{1, 2, 3, 4}));
}

TEST(InferJsonDecode, OneDimensionalShapeIsOneRow) {
  const InferRequest r = decode_ok(request("[4]", "[0.25,-0.5,1e3,7]"));
  EXPECT_EQ(r.rows, 1u);
  EXPECT_EQ(r.values, (std::vector<float>{0.25f, -0.5f, 1000.0f, 7.0f}));
}

TEST(InferJsonDecode, IdParametersRequestedOutputsAndUnknownKeys) {
  const InferRequest r =
      decode_ok(R"({"id":"req-\u00e9\"7","parameters":{"a":[1,{"b":null}]},"extension":{"x":[[[]]]},)"
                R"("outputs":[{"name":"state","parameters":{"binary_data":false}},{"name":"outputs"}],)"
                R"("inputs":[{"parameters":{"p":1},"data":[1,2,3,4],"shape":[1,4],"datatype":"FP32","name":"features",)"
                R"("future":"ignored"}]})");
  EXPECT_TRUE(r.has_id);
  EXPECT_EQ(r.id, "req-\xc3\xa9\"7");
  EXPECT_EQ(r.outputs, (std::vector<std::size_t>{1, 0}));  // in the order asked
  EXPECT_EQ(r.values, (std::vector<float>{1, 2, 3, 4}));
}

TEST(InferJsonDecode, EmptyOutputsListMeansAll) {
  const InferRequest r = decode_ok(R"({"outputs":[],"inputs":[{"name":"features","shape":[4],"datatype":"FP32",)"
                                   R"("data":[1,2,3,4]}]})");
  EXPECT_EQ(r.outputs, (std::vector<std::size_t>{0, 1}));
}

TEST(InferJsonDecode, NumbersRoundToTheNearestFloat) {
  const InferRequest r = decode_ok(request("[2,4]",
                                           "[16777217, -9007199254740993, 18446744073709551615, 1e-50, "
                                           "1e-45, -0.0, 0.1, 3.4028235e38]"));
  EXPECT_EQ(r.values[0], 16777216.0f);
  EXPECT_EQ(r.values[1], -9007199254740992.0f);
  EXPECT_EQ(r.values[2], 18446744073709551616.0f);
  EXPECT_EQ(r.values[3], 0.0f);                                      // below the smallest subnormal: zero
  EXPECT_EQ(r.values[4], std::numeric_limits<float>::denorm_min());  // 1e-45 is the nearest decimal
  EXPECT_TRUE(std::signbit(r.values[5]));
  EXPECT_EQ(r.values[6], 0.1f);  // the float nearest 0.1, not (float)(double)0.1 by luck: both agree here
  EXPECT_EQ(r.values[7], std::numeric_limits<float>::max());
}

TEST(InferJsonDecode, ReusedRequestKeepsItsStorage) {
  InferRequest r;
  const std::string body = request("[8,4]", "[1,2,3,4,1,2,3,4,1,2,3,4,1,2,3,4,1,2,3,4,1,2,3,4,1,2,3,4,1,2,3,4]");
  ASSERT_FALSE(decode_infer_request(body, spec(), r));
  const float* storage = r.values.data();
  ASSERT_FALSE(decode_infer_request(request("[2,4]", "[8,7,6,5,4,3,2,1]"), spec(), r));
  EXPECT_EQ(r.values.data(), storage);
  EXPECT_EQ(r.rows, 2u);
  EXPECT_EQ(r.values, (std::vector<float>{8, 7, 6, 5, 4, 3, 2, 1}));
}

// nlohmann makes a few allocations a call; the data adds none once the request's vector has grown.
TEST(InferJsonDecode, AllocationsDoNotGrowWithTheData) {
  InferRequest r;
  std::string big = "[";
  for (int i = 0; i < 32; ++i) big += std::to_string(static_cast<float>(i) * 0.37f) + (i < 31 ? "," : "]");
  const std::string one_row = request("[1,4]", "[0.5,1.5,2.5,3.5]");
  const std::string eight_rows = request("[8,4]", big);
  ASSERT_FALSE(decode_infer_request(eight_rows, spec(), r));  // grows the storage
  std::size_t small = 0, large = 0;
  {
    CountNew count;
    ASSERT_FALSE(decode_infer_request(one_row, spec(), r));
    small = count.calls();
  }
  {
    CountNew count;
    ASSERT_FALSE(decode_infer_request(eight_rows, spec(), r));
    large = count.calls();
  }
  EXPECT_EQ(small, large);
  EXPECT_LE(large, 8u);  // nlohmann's: its lexer's token buffers (grown per call) and the parser's state stack
}

// ---- refusals: one per bad case, each with its exact reason ----

// The position is nlohmann's: bytes read, the offending one (or the end of input) included.
TEST(InferJsonRefuse, MalformedJsonSaysTheBytePosition) {
  EXPECT_EQ(reason(R"({"inputs": [)"),
            "malformed JSON at byte 13: parse error at line 1, column 13: syntax error while parsing value - "
            "unexpected end of input; expected '[', '{', or a literal");
  EXPECT_EQ(reason(R"({"id": "x",, })"),
            "malformed JSON at byte 12: parse error at line 1, column 12: syntax error while parsing object key - "
            "unexpected ','; expected string literal");
  EXPECT_EQ(reason(""),
            "malformed JSON at byte 1: parse error at line 1, column 1: syntax error while parsing value - "
            "unexpected end of input; expected '[', '{', or a literal");
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,4]") + "x"),
            "malformed JSON at byte 82: parse error at line 1, column 82: syntax error while parsing value - "
            "invalid literal; last read: '4]}]}x'; expected end of input");
  // A byte that is not UTF-8, echoed by nlohmann, is spelled out: the reason itself is valid UTF-8.
  EXPECT_EQ(reason("{\"id\": \"\xff\"}"),
            "malformed JSON at byte 9: parse error at line 1, column 9: syntax error while parsing value - "
            "invalid string: ill-formed UTF-8 byte; last read: '\"<FF>'");
}

// The decoder never stops nlohmann's parse on a semantic error, so a syntax error anywhere wins.
TEST(InferJsonRefuse, ASyntaxErrorIsReportedBeforeAnythingElse) {
  EXPECT_EQ(reason(R"({"id": 5, "inputs": nul})"),
            "malformed JSON at byte 24: parse error at line 1, column 24: syntax error while parsing value - "
            "invalid literal; last read: '\"inputs\": nul}'");
}

TEST(InferJsonRefuse, NotAnObject) {
  EXPECT_EQ(reason("[1,2]"), "the request must be a JSON object, got an array");
  EXPECT_EQ(reason("\"features\""), "the request must be a JSON object, got a string");
  EXPECT_EQ(reason("null"), "the request must be a JSON object, got null");
}

TEST(InferJsonRefuse, MissingInputs) {
  EXPECT_EQ(reason(R"({"id":"a"})"), "the request has no \"inputs\"");
  EXPECT_EQ(reason(R"({"inputs":{"name":"features"}})"), "\"inputs\" must be an array, got an object");
}

TEST(InferJsonRefuse, NoInput) {
  EXPECT_EQ(reason(R"({"inputs":[]})"), "expected exactly one input ('features'), got 0");
}

TEST(InferJsonRefuse, ExtraInputs) {
  const std::string input = R"({"name":"features","shape":[4],"datatype":"FP32","data":[1,2,3,4]})";
  EXPECT_EQ(reason(R"({"inputs":[)" + input + "," + input + "]}"), "expected exactly one input ('features'), got 2");
  EXPECT_EQ(reason(R"({"inputs":[)" + input + R"(,{"name":"other"},3]})"),
            "expected exactly one input ('features'), got 3");
}

TEST(InferJsonRefuse, InputNotAnObject) {
  EXPECT_EQ(reason(R"({"inputs":[[1,2,3,4]]})"), "inputs[0] must be an object, got an array");
}

TEST(InferJsonRefuse, WrongInputNameSaysTheKnownName) {
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,4]", "\"input0\"")), "unknown input 'input0' (known: 'features')");
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,4]", "\"" + std::string(100, 'x') + "\"")),
            "unknown input '" + std::string(64, 'x') + "...' (known: 'features')");
  // Cut at 64 bytes, never through a character: "\u00e9" is two bytes, the 64th and 65th.
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,4]", "\"" + std::string(63, 'x') + "\\u00e9\"")),
            "unknown input '" + std::string(63, 'x') + "...' (known: 'features')");
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,4]", "7")), "inputs[0].name must be a string, got a number");
  EXPECT_EQ(reason(R"({"inputs":[{"shape":[4],"datatype":"FP32","data":[1,2,3,4]}]})"), "inputs[0] has no \"name\"");
}

TEST(InferJsonRefuse, DatatypeOtherThanFp32) {
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,4]", "\"features\"", "\"FP64\"")),
            "input 'features' has datatype 'FP64': only FP32 is supported");
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,4]", "\"features\"", "\"fp32\"")),
            "input 'features' has datatype 'fp32': only FP32 is supported");
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,4]", "\"features\"", "null")),
            "inputs[0].datatype must be a string, got null");
  EXPECT_EQ(reason(R"({"inputs":[{"name":"features","shape":[4],"data":[1,2,3,4]}]})"),
            "input 'features' has no \"datatype\"");
}

TEST(InferJsonRefuse, ShapeNotRowsByWidthOrWidth) {
  EXPECT_EQ(reason(request("[1,1,4]", "[1,2,3,4]")), "input 'features' has shape [1, 1, 4]: expected [rows, 4] or [4]");
  EXPECT_EQ(reason(request("[]", "[]")), "input 'features' has shape []: expected [rows, 4] or [4]");
  EXPECT_EQ(reason(request("[1,1,1,1,1,1,1,1,1,4]", "[1,2,3,4]")),
            "input 'features' has shape [1, 1, 1, 1, 1, 1, 1, 1, ...]: expected [rows, 4] or [4]");
  EXPECT_EQ(reason(request("[-1,4]", "[1,2,3,4]")), "inputs[0].shape[0] is -1: expected a non-negative integer");
  EXPECT_EQ(reason(request("[1,4.0]", "[1,2,3,4]")), "inputs[0].shape[1] is 4.0: expected a non-negative integer");
  EXPECT_EQ(reason(request("[1,\"4\"]", "[1,2,3,4]")),
            "inputs[0].shape[1] is a string: expected a non-negative integer");
  EXPECT_EQ(reason(request("\"1x4\"", "[1,2,3,4]")), "inputs[0].shape must be an array, got a string");
  EXPECT_EQ(reason(R"({"inputs":[{"name":"features","datatype":"FP32","data":[1,2,3,4]}]})"),
            "input 'features' has no \"shape\"");
}

TEST(InferJsonRefuse, WidthDifferingFromTheModel) {
  EXPECT_EQ(reason(request("[1,3]", "[1,2,3]")), "input 'features' has shape [1, 3]: width 3, the model's is 4");
  EXPECT_EQ(reason(request("[5]", "[1,2,3,4,5]")), "input 'features' has shape [5]: width 5, the model's is 4");
}

TEST(InferJsonRefuse, ZeroRows) {
  EXPECT_EQ(reason(request("[0,4]", "[]")), "input 'features' has shape [0, 4]: zero rows");
}

TEST(InferJsonRefuse, RowsAboveTheBound) {
  EXPECT_EQ(reason(request("[9,4]", "[]")), "input 'features' has 9 rows, more than the limit of 8");
  EXPECT_EQ(reason(request("[18446744073709551615,4]", "[]")),
            "input 'features' has 18446744073709551615 rows, more than the limit of 8");
}

TEST(InferJsonRefuse, DataLengthNotRowsTimesWidth) {
  EXPECT_EQ(reason(request("[2,4]", "[1,2,3,4,5,6,7]")), "input 'features' has 7 values in data, shape [2, 4] needs 8");
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,4,5]")), "input 'features' has 5 values in data, shape [1, 4] needs 4");
  EXPECT_EQ(reason(request("[1,4]", "[]")), "input 'features' has 0 values in data, shape [1, 4] needs 4");
  EXPECT_EQ(reason(R"({"inputs":[{"name":"features","shape":[4],"datatype":"FP32"}]})"),
            "input 'features' has no \"data\"");
  EXPECT_EQ(reason(request("[1,4]", "{\"0\":1}")), "inputs[0].data must be an array, got an object");
}

TEST(InferJsonRefuse, NonNumberInDataSaysTheIndex) {
  EXPECT_EQ(reason(request("[1,4]", "[1,2,\"3\",4]")), "inputs[0].data[2] is a string, not a number");
  EXPECT_EQ(reason(request("[1,4]", "[null,2,3,4]")), "inputs[0].data[0] is null, not a number");
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,true]")), "inputs[0].data[3] is a boolean, not a number");
  EXPECT_EQ(reason(request("[1,4]", "[1,{\"v\":2},3,4]")), "inputs[0].data[1] is an object, not a number");
  EXPECT_EQ(reason(request("[2,4]", "[[1,2,3,4],[5,6,\"x\",8]]")), "inputs[0].data[1][2] is a string, not a number");
}

TEST(InferJsonRefuse, NumberNotFiniteAsFloatSaysTheIndex) {
  EXPECT_EQ(reason(request("[1,4]", "[1,2,1e39,4]")), "inputs[0].data[2]: 1e39 is not a finite FP32 number");
  EXPECT_EQ(reason(request("[1,4]", "[-3.5e38,2,3,4]")), "inputs[0].data[0]: -3.5e38 is not a finite FP32 number");
  // Just above FLT_MAX's rounding boundary.
  EXPECT_EQ(reason(request("[1,4]", "[1,2,3,3.40282357e38]")),
            "inputs[0].data[3]: 3.40282357e38 is not a finite FP32 number");
  // Beyond double's range: nlohmann stops the parse there.
  EXPECT_EQ(reason(request("[1,4]", "[1,1e400,3,4]")), "inputs[0].data[1]: 1e400 is not a finite FP32 number");
  EXPECT_EQ(reason(request("[2,4]", "[[1,2,3,4],[5,6,7,-1e999]]")),
            "inputs[0].data[1][3]: -1e999 is not a finite FP32 number");
}

TEST(InferJsonRefuse, NestedDataNotMatchingTheShape) {
  EXPECT_EQ(reason(request("[2,4]", "[[1,2,3,4],[5,6,7]]")),
            "input 'features': data[1] has 3 values, shape [2, 4] needs 4");
  EXPECT_EQ(reason(request("[2,4]", "[[1,2,3,4]]")), "input 'features': data has 1 row, shape [2, 4] needs 2");
  EXPECT_EQ(reason(request("[1,4]", "[[1,2,3,4],[5,6,7,8]]")),
            "input 'features': data has 2 rows, shape [1, 4] needs 1");
  EXPECT_EQ(reason(request("[2,4]", "[[1,2,3,4],5,6,7,8]")),
            "input 'features': data mixes numbers and arrays (data[1] is a number, data[0] an array)");
  EXPECT_EQ(reason(request("[1,4]", "[[[1,2,3,4]]]")),
            "inputs[0].data[0][0] is an array: data nests at most two deep ([rows][width])");
  EXPECT_EQ(reason(request("[4]", "[[1,2,3,4]]")),
            "input 'features' has shape [4]: data nested in rows needs shape [rows, width]");
}

TEST(InferJsonRefuse, UnknownOutputSaysTheKnownNames) {
  const std::string input = R"("inputs":[{"name":"features","shape":[4],"datatype":"FP32","data":[1,2,3,4]}])";
  EXPECT_EQ(reason(R"({"outputs":[{"name":"y"}],)" + input + "}"), "unknown output 'y' (known: 'outputs', 'state')");
  EXPECT_EQ(reason(R"({"outputs":[{"name":"state"},{"name":"state"}],)" + input + "}"),
            "output 'state' is requested twice");
  EXPECT_EQ(reason(R"({"outputs":[{"parameters":{}}],)" + input + "}"), "outputs[0] has no \"name\"");
  EXPECT_EQ(reason(R"({"outputs":[{"name":"outputs"},"state"],)" + input + "}"),
            "outputs[1] must be an object, got a string");
  EXPECT_EQ(reason(R"({"outputs":[{"name":["state"]}],)" + input + "}"),
            "outputs[0].name must be a string, got an array");
  EXPECT_EQ(reason(R"({"outputs":{"name":"state"},)" + input + "}"), "\"outputs\" must be an array, got an object");
}

TEST(InferJsonRefuse, RepeatedKeys) {
  const std::string input = R"({"name":"features","shape":[4],"datatype":"FP32","data":[1,2,3,4]})";
  EXPECT_EQ(reason(R"({"inputs":[)" + input + R"(],"inputs":[]})"), "the request has a duplicate key \"inputs\"");
  EXPECT_EQ(reason(R"({"inputs":[{"name":"features","shape":[4],"datatype":"FP32","data":[1,2,3,4],"data":[5]}]})"),
            "inputs[0] has a duplicate key \"data\"");
  EXPECT_EQ(reason(R"({"outputs":[{"name":"state","name":"outputs"}],"inputs":[)" + input + "]}"),
            "outputs[0] has a duplicate key \"name\"");
}

TEST(InferJsonRefuse, MistypedIdAndParameters) {
  const std::string input = R"("inputs":[{"name":"features","shape":[4],"datatype":"FP32","data":[1,2,3,4]}])";
  EXPECT_EQ(reason(R"({"id":7,)" + input + "}"), "\"id\" must be a string, got a number");
  EXPECT_EQ(reason(R"({"parameters":[],)" + input + "}"), "\"parameters\" must be an object, got an array");
  EXPECT_EQ(reason(R"({"inputs":[{"parameters":"x","name":"features","shape":[4],"datatype":"FP32",)"
                   R"("data":[1,2,3,4]}]})"),
            "inputs[0].parameters must be an object, got a string");
}

// ---- the rows bound ----

TEST(InferJsonBound, MaxRowsIsAcceptedOneMoreIsRefused) {
  InferSpec s = spec();
  s.max_rows = 256;
  std::string data = "[";
  for (int i = 0; i < 256 * 4; ++i) data += std::to_string(i % 97) + ",";
  data.back() = ']';
  const InferRequest r = decode_ok(request("[256,4]", data), s);
  EXPECT_EQ(r.rows, 256u);
  ASSERT_EQ(r.values.size(), 256u * 4);
  EXPECT_EQ(r.values[1023], static_cast<float>(1023 % 97));
  data.back() = ',';
  EXPECT_EQ(reason(request("[257,4]", data + "1,2,3,4]"), s),
            "input 'features' has 257 rows, more than the limit of 256");
}

// A body claiming few rows but carrying a huge array stores no more than max_rows * width values.
TEST(InferJsonBound, StorageIsBoundedWhateverTheDataLength) {
  std::string data = "[";
  for (int i = 0; i < 200'000; ++i) data += "1,";
  data.back() = ']';
  InferRequest r;
  const auto error = decode_infer_request(request("[2,4]", data), spec(), r);
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, "input 'features' has 200000 values in data, shape [2, 4] needs 8");
  EXPECT_LE(r.values.capacity(), 64u);  // 8 rows * 4 stored at most (vector growth rounds up)
  // Deep nesting is counted, not recursed into: no stack to overflow.
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  EXPECT_EQ(reason(request("[1,4]", deep)),
            "inputs[0].data[0][0] is an array: data nests at most two deep ([rows][width])");
}

// ---- encoding ----

TEST(InferJsonEncode, ExactBody) {
  const std::vector<float> y = {0.5f, -1.25f, 3e-8f, 1e10f};
  const std::vector<float> h = {1, 2, 3, 4, 5, 6};
  const InferOutput outputs[] = {{"outputs", 2, y}, {"state", 3, h}};
  std::string out = "HTTP-prefix ";
  encode_infer_response(out, "mlp", 7, "req \"1\"\n", 2, outputs);
  EXPECT_EQ(out, R"(HTTP-prefix {"model_name":"mlp","model_version":"7","id":"req \"1\"\n","outputs":[)"
                 R"({"name":"outputs","datatype":"FP32","shape":[2,2],"data":[0.5,-1.25,3e-08,1e+10]},)"
                 R"({"name":"state","datatype":"FP32","shape":[2,3],"data":[1,2,3,4,5,6]}]})");
  out.clear();
  encode_infer_response(out, "m\x01", 0, std::nullopt, 1, std::span(outputs, 1).first(0));
  EXPECT_EQ(out, R"({"model_name":"m\u0001","model_version":"0","outputs":[]})");
}

TEST(InferJsonEncode, SignedZeroAndNonFinite) {
  const std::vector<float> y = {-0.0f, std::numeric_limits<float>::quiet_NaN(),
                                -std::numeric_limits<float>::infinity()};
  const InferOutput output{"outputs", 3, y};
  std::string out;
  encode_infer_response(out, "m", 1, std::nullopt, 1, std::span(&output, 1));
  EXPECT_EQ(out, R"({"model_name":"m","model_version":"1","outputs":[)"
                 R"({"name":"outputs","datatype":"FP32","shape":[1,3],"data":[-0.0,null,null]}]})");
}

TEST(InferJsonEncode, DataNotRowsTimesWidthThrows) {
  const std::vector<float> y = {1, 2, 3};
  const InferOutput output{"outputs", 2, y};
  std::string out;
  try {
    encode_infer_response(out, "m", 1, std::nullopt, 2, std::span(&output, 1));
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kShapeMismatch);
    EXPECT_STREQ(e.what(), "output 'outputs' has 3 values, shape [2, 2] needs 4");
  }
}

TEST(InferJsonEncode, ReusedStringAllocatesNothing) {
  std::vector<float> y(64 * 2, 0.0f);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = -1.17549435e-38f * static_cast<float>(i + 1);
  const InferOutput output{"outputs", 2, y};
  std::string out;
  encode_infer_response(out, "mlp", 3, "id", 64, std::span(&output, 1));
  const std::string first = out;
  CountNew count;
  for (int i = 0; i < 10; ++i) {
    out.clear();
    encode_infer_response(out, "mlp", 3, "id", 64, std::span(&output, 1));
  }
  EXPECT_EQ(count.calls(), 0u);
  EXPECT_EQ(out, first);
}

// ---- round trips: the encoder's output, read back by the decoder ----

// The response's "outputs" as a request's "inputs" (the same tensor object), to decode what was encoded.
std::string as_request(std::string response) {
  const std::size_t at = response.find("\"outputs\":[");
  EXPECT_NE(at, std::string::npos);
  response.replace(at, 11, "\"inputs\":[");
  return response;
}

TEST(InferJsonRoundTrip, EncodeThenDecodeEquals) {
  const std::vector<float> x = {0.1f, -2.5f, 1e-30f, 123456.789f, -0.0f, 0.0f, 7.0f, 3.4028235e38f};
  const InferOutput tensor{"features", 4, x};
  std::string body;
  encode_infer_response(body, "mlp", 12, "abc\t\"", 2, std::span(&tensor, 1));
  const InferRequest r = decode_ok(as_request(body));
  EXPECT_EQ(r.rows, 2u);
  EXPECT_TRUE(r.has_id);
  EXPECT_EQ(r.id, "abc\t\"");
  ASSERT_EQ(r.values.size(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(std::bit_cast<std::uint32_t>(r.values[i]), std::bit_cast<std::uint32_t>(x[i])) << i;
}

TEST(InferJsonRoundTrip, EveryRandomFloatComesBackBitForBit) {
  std::mt19937_64 rng(test_seed());
  InferSpec s = spec();
  s.input_width = 64;
  s.max_rows = 64;
  std::vector<float> x(64 * 64);
  std::string body;
  InferRequest r;
  std::size_t checked = 0;
  for (int round = 0; round < 50; ++round) {
    for (float& v : x) {
      // Random bit patterns cover every exponent (subnormals included) and both signs; NaN and infinity,
      // which JSON cannot carry, become their neighbours' patterns.
      std::uint32_t bits = static_cast<std::uint32_t>(rng());
      if ((bits & 0x7f800000u) == 0x7f800000u) bits &= 0xff7fffffu;
      const auto index = static_cast<std::uint32_t>(&v - x.data());
      if (round == 0 && index < 8) bits = index;  // zero and the smallest subnormals
      v = std::bit_cast<float>(bits);
    }
    const InferOutput tensor{"features", 64, x};
    body.clear();
    encode_infer_response(body, "mlp", 1, std::nullopt, 64, std::span(&tensor, 1));
    const auto error = decode_infer_request(as_request(body), s, r);
    ASSERT_FALSE(error) << *error;
    ASSERT_EQ(r.values.size(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(r.values[i]), std::bit_cast<std::uint32_t>(x[i]))
          << "value " << i << " of round " << round;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 50u * 64 * 64);
}

}  // namespace
}  // namespace tickinfer::internal
