// Threads. The project uses OpenMP on the outermost loop whose writes do not collide; this
// header hides whether OpenMP is there at all, so a build without it runs the same code on one
// thread and gets the same numbers.
#pragma once

namespace foundry {

bool have_openmp();            // was the project built with OpenMP?
int num_threads();             // threads a parallel loop will use
void set_num_threads(int n);   // n <= 0 means "all cores"
int thread_index();            // 0 outside a parallel region
bool in_parallel();            // are we inside a parallel region with more than one thread?

}  // namespace foundry
