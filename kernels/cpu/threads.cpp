// get_num_threads / set_num_threads: the size of the OpenMP team every CPU kernel forks.
#include <omp.h>

#include "mmgrad/core/error.h"
#include "mmgrad/kernels/backend.h"

namespace mmgrad {

int get_num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
  MMGRAD_CHECK(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
  omp_set_num_threads(n);
}

}  // namespace mmgrad
