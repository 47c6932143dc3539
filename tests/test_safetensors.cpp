// safetensors: round trips across dtypes and shapes, a check by an independent Python reader
// (tests/reference/read_safetensors.py, json+struct only), and corrupt or lying files that must
// each be a clean ethos::Error naming the problem.
#include <torch/torch.h>

#include "catch.h"
#include <nlohmann/json.hpp>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "trainer/model/safetensors.h"

using ethos::Error;
using ethos::NamedTensors;
using ethos::SafetensorsFile;
using ethos_catch::Contains;

namespace {

// One tensor of every supported dtype, including a 0-dim scalar and an empty tensor.
NamedTensors sample_tensors() {
  auto f32 = torch::arange(6, torch::kFloat).reshape({2, 3}) * 0.5 - 1.0;                  // [2,3]
  auto bf16 = torch::tensor({1.5, -2.25, 0.0078125, 3.0}).reshape({2, 2}).to(torch::kBFloat16);  // [2,2]
  return {
      {"model.layers.0.w", f32},
      {"f64", torch::tensor({1.0 / 3.0, -2.0, 1e300}, torch::kDouble)},  // [3]
      {"f16", torch::tensor({0.5, -65504.0}).to(torch::kHalf)},           // [2]
      {"bf16", bf16},
      {"scalar_i64", torch::tensor(int64_t{-9007199254740993})},           // []
      {"empty_i32", torch::zeros({0, 5}, torch::kInt)},                    // [0,5]
      {"i16", torch::tensor({-32768, 32767}, torch::kShort)},
      {"i8", torch::tensor({-128, 5, 127}, torch::kChar)},
      {"u8", torch::tensor({0, 200, 255}, torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
  };
}

std::string u64_le(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// A file from a raw header text and data section (no validation: for corrupt-file tests).
std::string raw_file(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

SafetensorsFile parse(const std::string& bytes) { return SafetensorsFile::parse(bytes, "bad.safetensors"); }

}  // namespace

CATCH_TEST_CASE("safetensors round trip keeps dtype, shape, values and order") {
  const NamedTensors tensors = sample_tensors();
  const std::string dir = ethos::test::fresh_dir("safetensors_roundtrip");
  const std::string path = dir + "/model.safetensors";
  ethos::write_safetensors(path, tensors);
  const std::string bytes = ethos::read_file(path);

  CATCH_SECTION("the data section starts 8-byte aligned") {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
    CATCH_CHECK((8 + n) % 8 == 0);
    CATCH_CHECK(bytes[8] == '{');
  }
  CATCH_SECTION("every tensor reads back bitwise equal") {
    const SafetensorsFile file = SafetensorsFile::read(path);
    CATCH_REQUIRE(file.entries().size() == tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& [name, expected] = tensors[i];
      CATCH_INFO("tensor " << name);
      CATCH_CHECK(file.entries()[i].name == name);  // data laid out in the given order
      CATCH_REQUIRE(file.contains(name));
      torch::Tensor got = file.get(name);
      CATCH_CHECK(got.scalar_type() == expected.scalar_type());
      CATCH_CHECK(got.sizes().vec() == expected.sizes().vec());
      CATCH_CHECK(torch::equal(got, expected));
    }
    CATCH_CHECK(file.get("scalar_i64").dim() == 0);
    CATCH_CHECK(file.get("scalar_i64").item<int64_t>() == int64_t{-9007199254740993});
    CATCH_CHECK(file.metadata().empty());
  }
  CATCH_SECTION("a non-contiguous view is written as its values") {
    auto t = torch::arange(12, torch::kFloat).reshape({3, 4}).t();  // [4,3], strided
    const SafetensorsFile file = SafetensorsFile::parse(ethos::serialize_safetensors({{"t", t}}), "mem");
    CATCH_CHECK(torch::equal(file.get("t"), t));
  }
}

CATCH_TEST_CASE("safetensors metadata round trips") {
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"ethos.step", "123"}, {"note", "a \"quoted\" é"}};
  const std::string bytes = ethos::serialize_safetensors({{"x", torch::ones({2})}}, meta);
  const SafetensorsFile file = SafetensorsFile::parse(bytes, "mem");
  CATCH_CHECK(file.metadata() == meta);
  CATCH_CHECK(torch::equal(file.get("x"), torch::ones({2})));
}

CATCH_TEST_CASE("an independent Python reader reads what ethos writes") {
  const NamedTensors tensors = sample_tensors();
  const std::string dir = ethos::test::fresh_dir("safetensors_python");
  const std::string path = dir + "/model.safetensors";
  ethos::write_safetensors(path, tensors, {{"format", "pt"}});

  const auto result = ethos::test::run("/usr/bin/python3 " + ethos::test::source_dir() +
                                       "/tests/reference/read_safetensors.py " + path);
  CATCH_INFO(result.output);
  CATCH_REQUIRE(result.status == 0);
  const auto out = nlohmann::json::parse(result.output);
  CATCH_CHECK(out["data_start"].get<int64_t>() % 8 == 0);
  CATCH_CHECK(out["metadata"] == nlohmann::json({{"format", "pt"}}));
  const auto& got = out["tensors"];
  CATCH_REQUIRE(got.size() == tensors.size());
  const char* dtypes[] = {"F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"};
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    CATCH_INFO("tensor " << name);
    CATCH_CHECK(got[i]["name"] == name);
    CATCH_CHECK(got[i]["dtype"] == dtypes[i]);
    CATCH_CHECK(got[i]["shape"].get<std::vector<int64_t>>() == t.sizes().vec());
    const auto values = got[i]["values"];
    const auto flat = t.reshape({-1});
    CATCH_REQUIRE(static_cast<int64_t>(values.size()) == flat.numel());
    for (int64_t k = 0; k < flat.numel(); ++k) {
      if (t.is_floating_point()) {  // every sample value is exact in its dtype: compare exactly
        CATCH_CHECK(values[k].get<double>() == flat[k].item<double>());
      } else if (t.scalar_type() == torch::kBool) {
        CATCH_CHECK(values[k].get<bool>() == flat[k].item<bool>());
      } else {
        CATCH_CHECK(values[k].get<int64_t>() == flat[k].item<int64_t>());
      }
    }
  }
}

CATCH_TEST_CASE("corrupt or lying safetensors files are clean errors") {
  const std::string good = ethos::serialize_safetensors({{"a", torch::ones({2, 2})}, {"b", torch::zeros({3})}});
  const std::string f32_2x2 = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  const std::string sixteen(16, '\0');

  CATCH_SECTION("sanity: the hand-built file itself is valid") {
    CATCH_CHECK(parse(raw_file(f32_2x2, sixteen)).get("a").sizes().vec() == std::vector<int64_t>{2, 2});
  }
  CATCH_SECTION("file shorter than 8 bytes") {
    CATCH_REQUIRE_THROWS_WITH(parse(good.substr(0, 5)), Contains("bad.safetensors") && Contains("shorter than the 8-byte"));
    CATCH_REQUIRE_THROWS_AS(parse(""), Error);
  }
  CATCH_SECTION("truncated header") {
    CATCH_REQUIRE_THROWS_WITH(parse(good.substr(0, 20)), Contains("larger than the file"));
  }
  CATCH_SECTION("header length larger than the file") {
    CATCH_REQUIRE_THROWS_WITH(parse(u64_le(1000) + f32_2x2 + sixteen), Contains("larger than the file"));
  }
  CATCH_SECTION("absurd header length") {
    CATCH_REQUIRE_THROWS_WITH(parse(u64_le(uint64_t{1} << 62) + f32_2x2), Contains("absurd"));
    CATCH_REQUIRE_THROWS_WITH(parse(u64_le(~uint64_t{0}) + f32_2x2), Contains("absurd"));
  }
  CATCH_SECTION("truncated data section") {
    CATCH_REQUIRE_THROWS_WITH(parse(good.substr(0, good.size() - 4)),
                              Contains("tensor 'b'") && Contains("past the end of the data section"));
  }
  CATCH_SECTION("header is not JSON or not an object") {
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file("{\"a\": [", "")), Contains("not valid JSON"));
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file("[1, 2]", "")), Contains("must be a JSON object"));
  }
  CATCH_SECTION("offsets past the end") {
    const std::string h = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(h, sixteen)), Contains("tensor 'a'") && Contains("past the end"));
  }
  CATCH_SECTION("size does not match dtype and shape") {
    const std::string h = R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(h, sixteen)), Contains("tensor 'a'") && Contains("needs 24"));
  }
  CATCH_SECTION("shape whose byte size overflows") {
    const std::string h =
        R"({"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,16]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(h, sixteen)), Contains("overflows"));
  }
  CATCH_SECTION("unknown dtype") {
    const std::string h = R"({"a":{"dtype":"F8_E4M3","shape":[16],"data_offsets":[0,16]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(h, sixteen)), Contains("unknown dtype 'F8_E4M3'"));
  }
  CATCH_SECTION("negative or non-integer shape") {
    const std::string neg = R"({"a":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(neg, sixteen)), Contains("non-negative integers"));
    const std::string frac = R"({"a":{"dtype":"F32","shape":[2.0,2],"data_offsets":[0,16]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(frac, sixteen)), Contains("non-negative integers"));
  }
  CATCH_SECTION("bad data_offsets") {
    const std::string missing = R"({"a":{"dtype":"F32","shape":[2,2]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(missing, sixteen)), Contains("\"data_offsets\" must be [begin, end]"));
    const std::string three = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8,16]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(three, sixteen)), Contains("\"data_offsets\" must be [begin, end]"));
    const std::string reversed = R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(reversed, sixteen)), Contains("begin > end"));
  }
  CATCH_SECTION("overlapping ranges") {
    const std::string h = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(h, sixteen)), Contains("overlap"));
  }
  CATCH_SECTION("data bytes not covered by any tensor") {
    const std::string gap = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(gap, sixteen)), Contains("data bytes [0, 8) are not covered"));
    const std::string tail = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(tail, sixteen)), Contains("data bytes [8, 16) at the end are not covered"));
  }
  CATCH_SECTION("duplicate tensor names") {
    const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(h, sixteen)), Contains("'a' appears more than once"));
  }
  CATCH_SECTION("non-string metadata value") {
    const std::string h = R"({"__metadata__":{"step":12},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
    CATCH_REQUIRE_THROWS_WITH(parse(raw_file(h, sixteen)), Contains("key 'step'") && Contains("must be strings"));
  }
  CATCH_SECTION("BOOL bytes other than 0 or 1") {
    const std::string h = R"({"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})";
    const SafetensorsFile file = parse(raw_file(h, std::string("\x01\x02", 2)));
    CATCH_REQUIRE_THROWS_WITH(file.get("m"), Contains("tensor 'm'") && Contains("must be 0 or 1"));
  }
  CATCH_SECTION("missing tensor and missing file") {
    CATCH_REQUIRE_THROWS_WITH(parse(good).get("c"), Contains("no tensor named 'c'"));
    CATCH_REQUIRE_THROWS_AS(SafetensorsFile::read("/nonexistent/x.safetensors"), Error);
  }
}

CATCH_TEST_CASE("the writer rejects what it cannot represent") {
  CATCH_REQUIRE_THROWS_WITH(ethos::serialize_safetensors({{"c", torch::zeros({2}, torch::kComplexFloat)}}),
                            Contains("tensor 'c'") && Contains("dtype"));
  CATCH_REQUIRE_THROWS_WITH(ethos::serialize_safetensors({{"a", torch::zeros({2})}, {"a", torch::zeros({2})}}),
                            Contains("'a' is reserved or used twice"));
}

CATCH_TEST_CASE("read maps the file: values survive pages being released and read again; odd files are errors") {
  using ethos_catch::Contains;
  const std::string dir = ethos::test::fresh_dir("safetensors_mmap");
  // Tensors spanning several pages and sharing pages with each other (odd byte sizes).
  ethos::NamedTensors t = {{"a", torch::randn({3, 1001})}, {"b", torch::arange(7, torch::kInt8)},
                           {"c", torch::randn({257, 33}, torch::kFloat64)}, {"d", torch::randn({5}).to(torch::kBFloat16)}};
  ethos::write_safetensors(dir + "/m.safetensors", t);
  const auto f = ethos::SafetensorsFile::read(dir + "/m.safetensors");
  for (int round = 0; round < 2; ++round)  // the second get() faults the released pages back in
    for (const auto& [name, tensor] : t) CATCH_CHECK(torch::equal(f.get(name), tensor));
  // The file object outlives the caller's copy of it (the mapping is shared, unmapped last).
  const torch::Tensor c = [&] {
    const ethos::SafetensorsFile copy = ethos::SafetensorsFile::read(dir + "/m.safetensors");
    return copy.get("c");
  }();
  CATCH_CHECK(torch::equal(c, t[2].second));
  ethos::test::write_text(dir + "/empty.safetensors", "");
  CATCH_CHECK_THROWS_WITH(ethos::SafetensorsFile::read(dir + "/empty.safetensors"), Contains("shorter than the 8-byte header length"));
  CATCH_CHECK_THROWS_WITH(ethos::SafetensorsFile::read(dir), Contains("not a regular file"));
  CATCH_CHECK_THROWS_WITH(ethos::SafetensorsFile::read(dir + "/missing.safetensors"), Contains("cannot open"));
}
