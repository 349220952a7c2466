#include "engine/parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace foundry {

#ifdef _OPENMP
bool have_openmp() { return true; }
int num_threads() { return omp_get_max_threads(); }
void set_num_threads(int n) { omp_set_num_threads(n > 0 ? n : omp_get_num_procs()); }
int thread_index() { return omp_get_thread_num(); }
bool in_parallel() { return omp_in_parallel() != 0; }
#else
bool have_openmp() { return false; }
int num_threads() { return 1; }
void set_num_threads(int) {}
int thread_index() { return 0; }
bool in_parallel() { return false; }
#endif

}  // namespace foundry
