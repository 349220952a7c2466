// The GGUF container (common/gguf.h): what we write reads back, and every kind of broken file is
// refused with an error that names the problem, never a crash or a huge allocation.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "common/gguf.h"

using namespace foundry;

namespace {

// A hand-made GGUF file, field by field, so that a test can break exactly one field.
struct Builder {
  std::string b;
  template <typename T>
  Builder& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Builder& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
  Builder& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    b += "GGUF";
    return put<uint32_t>(version).put<uint64_t>(tensors).put<uint64_t>(kvs);
  }
  // A tensor info: name, dims, type, offset.
  Builder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(ne.size());
    for (uint64_t d : ne) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  Builder& pad(size_t align = 32) {
    b.resize((b.size() + align - 1) / align * align, '\0');
    return *this;
  }
  Builder& zeros(size_t n) {
    b.append(n, '\0');
    return *this;
  }
};

std::string error_of(const std::string& bytes) {
  try {
    parse_gguf(bytes, "x.gguf");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

std::string small_file() {
  std::vector<std::pair<std::string, GgufValue>> kv = {{"general.architecture", GgufValue::string("llama")},
                                                       {"n", GgufValue::u32(7)},
                                                       {"eps", GgufValue::f32(1e-5f)},
                                                       {"flag", GgufValue::boolean(true)},
                                                       {"words", GgufValue::strings({"a", "bc", ""})},
                                                       {"scores", GgufValue::f32s({0.5f, -2})},
                                                       {"types", GgufValue::i32s({1, 3, -6})}};
  GgufTensorOut a{"a", {3, 2}, GgmlType::kF32, std::string(24, '\1')};
  GgufTensorOut q{"q", {64}, GgmlType::kQ8_0, std::string(68, '\2')};
  GgufTensorOut h{"h", {5}, GgmlType::kF16, std::string(10, '\3')};
  return serialize_gguf(kv, {a, q, h});
}

}  // namespace

TEST_CASE("gguf: what serialize_gguf writes, parse_gguf reads back, aligned", "[gguf]") {
  GgufFile f = parse_gguf(small_file(), "small.gguf");
  CHECK(f.version == 3);
  CHECK(f.alignment == 32);
  REQUIRE(f.metadata.size() == 7);
  CHECK(f.metadata[0].first == "general.architecture");
  CHECK(f.find("general.architecture")->s == "llama");
  CHECK(f.find("n")->type == GgufValueType::kU32);
  CHECK(f.find("n")->i == 7);
  CHECK(f.find("eps")->f == Approx(1e-5).epsilon(1e-6));
  CHECK(f.find("flag")->i == 1);
  REQUIRE(f.find("words")->array.size() == 3);
  CHECK(f.find("words")->array[1].s == "bc");
  CHECK(f.find("scores")->array[1].f == -2);
  CHECK(f.find("types")->array[2].i == -6);
  CHECK(f.find("missing") == nullptr);
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.data_offset % 32 == 0);
  const GgufTensorInfo& q = *f.find_tensor("q");
  CHECK(q.type == GgmlType::kQ8_0);
  CHECK(q.bytes == 68);   // two blocks of 2 + 32 bytes
  CHECK(q.offset == 32);  // "a" takes 24 bytes, padded to 32
  CHECK(std::string(f.data(q), 68) == std::string(68, '\2'));
  CHECK(f.find_tensor("h")->offset == 128);
  CHECK(f.bytes.size() % 32 == 0);
}

TEST_CASE("gguf: a non-default alignment is written as general.alignment and honoured", "[gguf]") {
  GgufTensorOut a{"a", {3}, GgmlType::kF32, std::string(12, '\1')};
  GgufTensorOut b{"b", {1}, GgmlType::kF32, std::string(4, '\2')};
  GgufFile f = parse_gguf(serialize_gguf({}, {a, b}, 64), "x");
  CHECK(f.alignment == 64);
  CHECK(f.find("general.alignment")->i == 64);
  CHECK(f.find_tensor("b")->offset == 64);
  CHECK(f.data_offset % 64 == 0);
}

TEST_CASE("gguf: every truncation of a valid file is refused with a clear error", "[gguf]") {
  const std::string whole = small_file();
  // The last tensor's data ends before the final padding: cutting only padding leaves a valid file.
  const size_t needed = parse_gguf(whole, "x").data_offset + 128 + 10;
  for (size_t n = 0; n < needed; n++) {
    INFO("cut to " << n << " bytes");
    std::string e = error_of(whole.substr(0, n));
    CHECK(e.rfind("x.gguf: ", 0) == 0);
    bool named = e.find("truncated") != std::string::npos || e.find("not a GGUF file") != std::string::npos;
    CHECK(named);
  }
  CHECK(error_of(whole.substr(0, needed)) == "(no error)");
}

TEST_CASE("gguf: a wrong magic or version is refused", "[gguf]") {
  CHECK_THAT(error_of("GGML" + std::string(20, '\0')), Catch::Contains("not a GGUF file"));
  CHECK_THAT(error_of("FUGG" + std::string(20, '\0')), Catch::Contains("big-endian"));
  CHECK_THAT(error_of(Builder().header(0, 0, 1).b), Catch::Contains("GGUF version 1 is not supported"));
  CHECK_THAT(error_of(Builder().header(0, 0, 4).b), Catch::Contains("GGUF version 4 is not supported"));
  CHECK(error_of(Builder().header(0, 0, 2).b) == "(no error)");
}

TEST_CASE("gguf: bad metadata is refused, naming the key", "[gguf]") {
  CHECK_THAT(error_of(Builder().header(0, 1).str("k").put<uint32_t>(13).zeros(8).b),
             Catch::Contains("metadata \"k\": unknown value type 13"));
  CHECK_THAT(error_of(Builder().header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2).b),
             Catch::Contains("a bool must be 0 or 1"));
  // A string claiming more bytes than the file has: refused before any allocation.
  CHECK_THAT(error_of(Builder().header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(1ull << 60).b),
             Catch::Contains("truncated"));
  // An array claiming 2^60 elements.
  CHECK_THAT(error_of(Builder().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 60).b),
             Catch::Contains("claims 1152921504606846976 elements"));
  CHECK_THAT(error_of(Builder().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(0).b),
             Catch::Contains("arrays of arrays"));
  CHECK_THAT(
      error_of(
          Builder().header(0, 2).str("k").put<uint32_t>(0).put<uint8_t>(1).str("k").put<uint32_t>(0).put<uint8_t>(1).b),
      Catch::Contains("duplicate metadata key \"k\""));
  CHECK_THAT(error_of(Builder().header(0, 1).str("").put<uint32_t>(0).put<uint8_t>(1).b),
             Catch::Contains("the key is empty"));
  CHECK_THAT(error_of(Builder().header(0, 1ull << 40).b), Catch::Contains("kv_count"));
  CHECK_THAT(error_of(Builder().header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(48).b),
             Catch::Contains("general.alignment = 48, expected a power of two"));
  CHECK_THAT(error_of(Builder().header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(0).b),
             Catch::Contains("expected a power of two"));
  CHECK_THAT(error_of(Builder().header(0, 1).str("general.alignment").put<uint32_t>(5).put<int32_t>(32).b),
             Catch::Contains("general.alignment must be a u32"));
}

TEST_CASE("gguf: bad tensor infos are refused, naming the tensor", "[gguf]") {
  auto one = [](std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data) {
    return error_of(Builder().header(1, 0).tensor("t", ne, type, offset).pad().zeros(data).b);
  };
  CHECK(one({4}, 0, 0, 16) == "(no error)");
  CHECK_THAT(one({4}, 12, 0, 16), Catch::Contains("tensor \"t\": tensor type Q4_K (12) is not supported"));
  CHECK_THAT(one({4}, 99, 0, 16), Catch::Contains("tensor type type 99 (99) is not supported"));
  CHECK_THAT(one({4}, 0, 8, 64), Catch::Contains("offset 8 is not a multiple of the alignment 32"));
  CHECK_THAT(one({4}, 0, 0, 8), Catch::Contains("runs past the end of the file"));
  CHECK_THAT(one({4}, 0, 1ull << 62, 16), Catch::Contains("runs past the end of the file"));
  CHECK_THAT(one({48}, 8, 0, 64), Catch::Contains("not a multiple of the block size 32"));
  CHECK_THAT(one({1ull << 40, 1ull << 40}, 0, 0, 16), Catch::Contains("the shape overflows"));
  CHECK_THAT(one({1ull << 63}, 0, 0, 16), Catch::Contains("the shape overflows"));
  // Within int64, but the bytes it needs (4 per element) far beyond the file.
  CHECK_THAT(one({1ull << 61}, 0, 0, 16), Catch::Contains("runs past the end of the file"));
  CHECK_THAT(one({}, 0, 0, 16), Catch::Contains("n_dims = 0, expected 1..4"));
  CHECK_THAT(one({1, 1, 1, 1, 1}, 0, 0, 16), Catch::Contains("n_dims = 5"));
  CHECK_THAT(error_of(Builder().header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).pad().zeros(64).b),
             Catch::Contains("tensors \"a\" (bytes 0..64) and \"b\" (from 32) overlap"));
  CHECK_THAT(error_of(Builder().header(2, 0).tensor("a", {4}, 0, 0).tensor("a", {4}, 0, 32).pad().zeros(64).b),
             Catch::Contains("duplicate tensor \"a\""));
  CHECK_THAT(error_of(Builder().header(1ull << 50, 0).b), Catch::Contains("tensor_count"));
  // Two tensors at the same offset overlap too (the second of equal offsets).
  CHECK_THAT(error_of(Builder().header(2, 0).tensor("a", {4}, 0, 0).tensor("b", {4}, 0, 0).pad().zeros(32).b),
             Catch::Contains("overlap"));
}

TEST_CASE("gguf: the writer refuses what the reader would refuse", "[gguf]") {
  GgufTensorOut bad{"t", {4}, GgmlType::kF32, std::string(15, '\0')};
  CHECK_THROWS_WITH(serialize_gguf({}, {bad}), Catch::Contains("15 bytes"));
  GgufTensorOut q{"t", {48}, GgmlType::kQ8_0, std::string(51, '\0')};
  CHECK_THROWS(serialize_gguf({}, {q}));
  GgufTensorOut ok{"t", {4}, GgmlType::kF32, std::string(16, '\0')};
  CHECK_THROWS_WITH(serialize_gguf({}, {ok, ok}), Catch::Contains("duplicate tensor"));
  CHECK_THROWS_WITH(serialize_gguf({{"k", GgufValue::u32(1)}, {"k", GgufValue::u32(2)}}, {}),
                    Catch::Contains("duplicate metadata key"));
  CHECK_THROWS(serialize_gguf({}, {}, 48));
}

TEST_CASE("gguf: value summaries for model-info", "[gguf]") {
  CHECK(gguf_value_summary(GgufValue::string("llama")) == "\"llama\"");
  CHECK(gguf_value_summary(GgufValue::u32(5)) == "5");
  CHECK(gguf_value_summary(GgufValue::boolean(false)) == "false");
  CHECK(gguf_value_summary(GgufValue::strings({"a", "b", "c", "d", "e"})) ==
        "[5 x string] \"a\", \"b\", \"c\", \"d\", ...");
  CHECK(ggml_type_name(8) == "Q8_0");
  CHECK(ggml_type_name(30) == "BF16");
}
