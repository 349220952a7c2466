// Lesson 22: quantization. Block quantization worked by hand, the integer dot product, and what
// Q8_0 and Q4_0 do to a real (tiny) model:
//
//   [q8_0]     32 numbers quantized to one Q8_0 block: scale, integers, error
//   [q4_0]     the same 32 numbers as a Q4_0 block: the signed maximum, the nibbles, the bytes
//   [dot]      one block's dot product in integers, against the float one; every kernel agrees
//   [quality]  llama2.c's stories260K in fp32, q8_0 and q4_0: bytes per token, perplexity on a
//              TinyStories text through the decode path, and greedy agreement with fp32
//   [speed]    tokens/s of the three (volatile: the lesson does not quote this section)
//
// Exits non-zero if a check fails.
//
//   build/lessons/lesson_22
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/file_io.h"
#include "engine/parallel.h"
#include "engine/quant.h"
#include "infer/generate.h"
#include "infer/kv_cache.h"
#include "infer/sampling.h"
#include "lesson_common.h"
#include "model/llama2c.h"
#include "model/quantize.h"
#include "tokenizer/sentencepiece.h"

using namespace foundry;

namespace {

// The 32 numbers of the worked example: a smooth wave with one outlier, like a row of weights.
std::vector<float> example_values() {
  std::vector<float> x(QK);
  for (int j = 0; j < QK; ++j) x[j] = std::round(100.0f * 0.8f * std::sin(0.7f * j + 0.3f)) / 100.0f;
  x[11] = -2.13f;  // the outlier sets the scale for all 32
  return x;
}

void print_row(const char* label, const std::vector<float>& v, const char* format) {
  std::printf("%s", label);
  for (int j = 0; j < QK; ++j) {
    std::printf(format, v[j]);
    if (j % 8 == 7 && j < QK - 1) std::printf("\n%*s", 10, "");  // 8 numbers a line, indented under the first
  }
  std::printf("\n");
}

// Mean negative log-likelihood of tokens[1..n) predicted one position at a time by decode_step:
// the path generation takes, so a quantized model's activations are quantized here too.
double decode_perplexity(const Model& m, const std::vector<int>& tokens) {
  DecodeState s = make_decode_state(m.config);
  const int V = m.config.vocab_size;
  double nll = 0;
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    const real* logits = decode_step(s, m, tokens[t]);
    double mx = logits[0];
    for (int v = 1; v < V; ++v) mx = std::max(mx, double(logits[v]));
    double sum = 0;
    for (int v = 0; v < V; ++v) sum += std::exp(double(logits[v]) - mx);
    nll += mx + std::log(sum) - double(logits[tokens[t + 1]]);
  }
  return std::exp(nll / double(tokens.size() - 1));
}

std::vector<int> greedy(const Model& m, int n) {
  DecodeState s = make_decode_state(m.config);
  Sampler sampler({0.0, 0, 1.0});
  return generate(m, s, sampler, {1}, n, {}).tokens;  // from BOS, as llama2.c starts
}

}  // namespace

int main() {
  set_num_threads(1);
  const std::vector<float> x = example_values();

  std::printf("[q8_0]\n");
  BlockQ8_0 b8;
  quantize_row_q8_0(x.data(), &b8, QK);
  std::vector<float> back8(QK);
  dequantize_row_q8_0(&b8, back8.data(), QK);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float d8 = fp16_to_fp32(b8.d);
  std::printf("amax = %.2f, d = amax / 127 = %.6f, stored as fp16 0x%04x = %.6f\n", amax, amax / 127.0f, b8.d, d8);
  print_row("x       ", x, " %5.2f");
  std::vector<float> q8(QK);
  for (int j = 0; j < QK; ++j) q8[j] = b8.qs[j];
  print_row("q       ", q8, " %5.0f");
  double worst8 = 0, sq8 = 0;
  for (int j = 0; j < QK; ++j) {
    worst8 = std::max(worst8, double(std::fabs(back8[j] - x[j])));
    sq8 += double(back8[j] - x[j]) * (back8[j] - x[j]);
  }
  std::printf("34 bytes for 32 values (8.5 bits each); worst error %.5f = %.2f steps, rms error %.5f\n", worst8,
              worst8 / d8, std::sqrt(sq8 / QK));
  lesson::check(worst8 <= 0.5 * d8 * 1.001, "every q8_0 value is within half a step");

  std::printf("\n[q4_0]\n");
  BlockQ4_0 b4;
  quantize_row_q4_0(x.data(), &b4, QK);
  std::vector<float> back4(QK);
  dequantize_row_q4_0(&b4, back4.data(), QK);
  const float d4 = fp16_to_fp32(b4.d);
  std::printf("max by magnitude = %.2f, d = max / -8 = %.6f, stored as fp16 0x%04x = %.6f\n", x[11], x[11] / -8.0f,
              b4.d, d4);
  std::vector<float> nib(QK);
  for (int j = 0; j < QK / 2; ++j) nib[j] = b4.qs[j] & 0x0f, nib[j + 16] = b4.qs[j] >> 4;
  print_row("nibble  ", nib, " %5.0f");
  print_row("back    ", back4, " %5.2f");
  std::printf("bytes  ");
  for (int j = 0; j < QK / 2; ++j) std::printf(" %02x", b4.qs[j]);
  std::printf("   (byte j = value j | value j+16 << 4)\n");
  double worst4 = 0, sq4 = 0;
  for (int j = 0; j < QK; ++j) {
    worst4 = std::max(worst4, double(std::fabs(back4[j] - x[j])));
    sq4 += double(back4[j] - x[j]) * (back4[j] - x[j]);
  }
  std::printf("18 bytes for 32 values (4.5 bits each); worst error %.5f = %.2f steps, rms error %.5f\n", worst4,
              worst4 / std::fabs(d4), std::sqrt(sq4 / QK));
  lesson::check(back4[11] == fp16_to_fp32(b4.d) * -8.0f, "the largest magnitude maps to nibble 0, exactly -8 d");

  std::printf("\n[dot]\n");
  std::vector<float> a(QK);
  for (int j = 0; j < QK; ++j) a[j] = std::round(100.0f * std::cos(0.4f * j)) / 100.0f;
  QuantMatrix w = quantize_matrix(QuantType::q8_0, x.data(), 1, QK);
  QuantScratch s;
  quantize_activations(a.data(), QK, s);
  int32_t S = 0;
  for (int j = 0; j < QK; ++j) S += int32_t(b8.qs[j]) * int32_t(s.x_blocks[0].qs[j]);
  double exact = 0;
  for (int j = 0; j < QK; ++j) exact += double(x[j]) * a[j];
  float naive = 0, fast = 0;
  quant_matvec_naive(&naive, w, a.data());
  quant_matvec_rows(&fast, w, s, 0, 1, quant_kernel());
  std::printf("S = sum of 32 int8 x int8 products = %d; d_w d_x S = %.6f x %.6f x %d = %.6f\n", S, d8, s.x_scale[0], S,
              naive);
  double weights_only = 0;
  for (int j = 0; j < QK; ++j) weights_only += double(back8[j]) * a[j];
  std::printf("the dequantized weights with the float activations: %.6f\n", weights_only);
  std::printf("the float dot product of the original numbers:      %.6f\n", exact);
  float portable = 0;
  quant_matvec_rows(&portable, w, s, 0, 1, QuantKernel::portable);
  lesson::check(std::memcmp(&fast, &naive, 4) == 0 && std::memcmp(&portable, &naive, 4) == 0,
                "the fastest kernel on this CPU and the portable one give the naive twin's bits");

  std::printf("\n[quality]\n");
  const std::string fixtures = std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/llama2c/";
  std::unique_ptr<Tokenizer> tok = load_llama2c_tokenizer(fixtures + "tok512.bin");
  const std::string text = read_file(std::string(FOUNDRY_SOURCE_DIR) + "/data/tinystories.txt").substr(0, 2000);
  std::vector<int> tokens = {1};
  for (int id : tok->encode(text)) tokens.push_back(id);
  tokens.resize(std::min<size_t>(tokens.size(), 512));
  const int n_greedy = 200;
  std::vector<int> reference;
  double ppl_fp32 = 0, fp32_bytes = 0;
  std::printf("%-6s %10s %10s %12s %s\n", "type", "KB/token", "vs fp32", "perplexity", "greedy tokens equal to fp32's");
  std::vector<Model> models;
  for (const char* type : {"fp32", "q8_0", "q4_0"}) {
    Model m = load_llama2c_checkpoint(fixtures + "stories260K.bin");
    if (std::string(type) != "fp32") quantize_model(m, parse_quant_type(type));
    // What one token reads: every tensor once as stored (the embedding table is the tied output
    // projection, read whole for the logits), plus the token's own row of it.
    double bytes = 4.0 * m.config.dim;
    for (size_t k = 0; k < m.values.size(); ++k) {
      const QuantMatrix* q = m.quantized_of(&m.values[k]);
      bytes += q ? q->blocks.size() : 4.0 * m.values[k].data.size();
    }
    const double ppl = decode_perplexity(m, tokens);
    const std::vector<int> g = greedy(m, n_greedy);
    if (reference.empty()) reference = g, ppl_fp32 = ppl;
    size_t same = 0;
    while (same < g.size() && same < reference.size() && g[same] == reference[same]) ++same;
    if (std::string(type) == "fp32") fp32_bytes = bytes;
    std::printf("%-6s %10.1f %9.2fx %12.4f %zu of %d\n", type, bytes / 1024, fp32_bytes / bytes, ppl, same, n_greedy);
    if (std::string(type) == "q8_0") {
      lesson::check(std::fabs(ppl / ppl_fp32 - 1) < 0.005, "q8_0 perplexity within 0.5% of fp32");
    }
    models.push_back(std::move(m));
  }
  std::printf("(perplexity of %zu tokens of data/tinystories.txt, one position at a time through decode_step)\n",
              tokens.size() - 1);

  std::printf("\n[speed]\n");
  const char* names[] = {"fp32", "q8_0", "q4_0"};
  for (size_t i = 0; i < models.size(); ++i) {
    DecodeState st = make_decode_state(models[i].config);
    Sampler sampler({0.0, 0, 1.0});
    GenerationResult r = generate(models[i], st, sampler, {1}, 256, {});
    std::printf("%s: %.0f tokens/s at 1 thread (kernel %s)\n", names[i], r.tokens.size() / r.decode_seconds,
                quant_kernel_name(quant_kernel()));
  }
  return lesson::failures == 0 ? 0 : 1;
}
