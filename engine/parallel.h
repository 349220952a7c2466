// Threads. The project uses OpenMP on the outermost loop whose writes do not collide; this
// header hides whether OpenMP is there at all, so a build without it runs the same code on one
// thread and gets the same numbers.
#pragma once

namespace foundry {

bool have_openmp();           // was the project built with OpenMP?
int num_threads();            // threads a parallel loop will use
void set_num_threads(int n);  // n <= 0 means "all cores"
int thread_index();           // 0 outside a parallel region
bool in_parallel();           // are we inside a parallel region with more than one thread?

// ANCHOR: worth_threads
// Is a loop worth threads? Waking the other threads of a parallel loop costs a few
// microseconds, about what one core needs to add some 30 thousand numbers; a smaller loop
// (a gradient check, one token of generation) runs faster on the thread it is on. Each kind of
// loop counts its work in its own unit, so each has its own threshold, all of them here:
enum class Work {
  elementwise,       // numbers read and written by an elementwise or row-wise loop
  zeroing,           // numbers set to zero (a store only, so twice as many as elementwise)
  product,           // multiply-adds of a matrix product (rows · cols · depth)
  attention,         // multiply-adds of causal attention in training, B·NH·T²·HS
  matvec,            // multiply-adds of a matrix-vector product in decoding, N·K
  decode_attention,  // multiply-adds of one decoding step's attention, NH·T·HS
};

constexpr double work_threshold(Work kind) {
  switch (kind) {
    case Work::elementwise:
      return 1 << 15;
    case Work::zeroing:
      return 1 << 16;
    case Work::product:
      return 100000;  // where Eigen itself would start threading a product
    case Work::attention:
      return 1 << 18;
    case Work::matvec:
      return 1 << 18;
    case Work::decode_attention:
      return 1 << 16;
  }
  return 0;
}

// `amount` is the loop's work in the unit of `kind`. Use it in `#pragma omp parallel for if (...)`.
constexpr bool worth_threads(Work kind, double amount) { return amount >= work_threshold(kind); }
// ANCHOR_END: worth_threads

}  // namespace foundry
