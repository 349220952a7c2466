#include "engine/matmul_onednn.h"

#include <stdexcept>

#include "engine/parallel.h"

#ifdef FOUNDRY_HAVE_ONEDNN
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#endif

namespace foundry {

#ifdef FOUNDRY_HAVE_ONEDNN

bool onednn_built() { return true; }

namespace {

using dt = dnnl::memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// One product's primitive, with memory objects whose data pointers are swapped in each call.
struct Product {
  dnnl::matmul prim;
  dnnl::memory a, b, out;
};

// The memory of a (rows, cols) matrix at the given strides. A dimension of size 1 gets the
// stride its row-major layout would have, so oneDNN never sees two dimensions with stride 1.
dnnl::memory::desc matrix_desc(long rows, long cols, long row_stride, long col_stride, dt type) {
  if (rows == 1) row_stride = cols;
  if (cols == 1) col_stride = 1;
  return dnnl::memory::desc({rows, cols}, type, {row_stride, col_stride});
}

dnnl::matmul::primitive_desc product_desc(long M, long K, long N, long a_rs, long a_cs, long b_rs, long b_cs, long ldo,
                                          bool accumulate) {
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);  // out = 1 · out + a · b
    attr.set_post_ops(ops);
  }
  const dnnl::matmul::desc desc(matrix_desc(M, K, a_rs, a_cs, dt::bf16), matrix_desc(K, N, b_rs, b_cs, dt::bf16),
                                matrix_desc(M, N, ldo, 1, dt::f32));
  return dnnl::matmul::primitive_desc(desc, attr, cpu_engine());
}

// The thread count is part of the key: oneDNN fixes its division of the work when it creates
// the primitive.
using Key = std::tuple<long, long, long, long, long, long, long, long, bool, int>;

}  // namespace

void onednn_gemm(float* out, long ldo, Bf16View a, Bf16View b, long M, long K, long N, bool accumulate,
                 bool one_thread) {
  // oneDNN takes its thread count from OpenMP's, in the calling thread; a small product gets one
  // thread, as in our own kernels (engine/parallel.h's threshold).
  struct OneThreadScope {  // restores the thread count however the call ends
    int saved;
    explicit OneThreadScope(bool on) : saved(on && num_threads() != 1 ? num_threads() : 0) {
      if (saved != 0) set_num_threads(1);
    }
    ~OneThreadScope() {
      if (saved != 0) set_num_threads(saved);
    }
  } scope(one_thread);
  const int threads = num_threads();
  // Primitives and streams belong to the thread that made them (a memory object is not shared
  // between threads), so each thread keeps its own.
  static thread_local std::map<Key, Product> cache;
  static thread_local dnnl::stream stream(cpu_engine());
  try {
    const Key key{M, K, N, a.row_stride, a.col_stride, b.row_stride, b.col_stride, ldo, accumulate, threads};
    auto it = cache.find(key);
    if (it == cache.end()) {
      // A training run asks for a few dozen shapes; a program that keeps asking for new ones
      // (tests sweeping sizes) starts over rather than holding every primitive it ever made.
      if (cache.size() >= 256) cache.clear();
      const auto pd = product_desc(M, K, N, a.row_stride, a.col_stride, b.row_stride, b.col_stride, ldo, accumulate);
      Product p{dnnl::matmul(pd), dnnl::memory(pd.src_desc(), cpu_engine(), nullptr),
                dnnl::memory(pd.weights_desc(), cpu_engine(), nullptr),
                dnnl::memory(pd.dst_desc(), cpu_engine(), nullptr)};
      it = cache.emplace(key, std::move(p)).first;
    }
    Product& p = it->second;
    p.a.set_data_handle(const_cast<bf16*>(a.data));  // oneDNN's handles are not const; it only reads these
    p.b.set_data_handle(const_cast<bf16*>(b.data));
    p.out.set_data_handle(out);
    p.prim.execute(stream, {{DNNL_ARG_SRC, p.a}, {DNNL_ARG_WEIGHTS, p.b}, {DNNL_ARG_DST, p.out}});
    stream.wait();
  } catch (const dnnl::error& e) {
    throw std::runtime_error("oneDNN bf16 matmul (" + std::to_string(M) + " x " + std::to_string(K) + ") · (" +
                             std::to_string(K) + " x " + std::to_string(N) + "): " + e.what());
  }
}

std::string onednn_description() {
  std::string isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx:
      isa = "avx512_core_amx (AMX tiles)";
      break;
    case dnnl::cpu_isa::avx512_core_bf16:
      isa = "avx512_core_bf16 (vdpbf16ps)";
      break;
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core:
      isa = "avx512_core (no bf16 instructions: converts to fp32, not faster)";
      break;
    default:
      isa = "older than avx512_core (no bf16 instructions: slow)";
      break;
  }
  std::string impl = "?";
  try {
    impl = product_desc(256, 256, 256, 256, 1, 256, 1, 256, false).impl_info_str();
  } catch (const dnnl::error& e) {
    impl = std::string("none (") + e.what() + ")";
  }
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + ", ISA " + isa + ", matmul " + impl;
}

#else  // built without oneDNN

bool onednn_built() { return false; }

void onednn_gemm(float*, long, Bf16View, Bf16View, long, long, long, bool, bool) {
  throw std::logic_error("onednn_gemm: this build has no oneDNN");
}

std::string onednn_description() { return "oneDNN not built in"; }

#endif

}  // namespace foundry
