// The op list: one entry per way of calling each public op (ops/*.h and the functional losses of
// nn/losses.h), in the spirit of ggml's test-backend-ops. Every driver reads this one list:
//
//   tests/test_op_list.cpp   float64 gradcheck + float32-vs-float64 forward for every case; CPU vs
//                            CUDA forward and gradients (skipped without a GPU); the completeness
//                            check: every op declared in ops/*.h needs a case here
//   bench/bench_all.cpp      `bench_all --op NAME` times a case's forward and forward + backward
//
// A case names its op, its inputs (shape, what kind of tensor, where the values are drawn from so
// that every checked point is differentiable) and a lambda that calls the op:
//
//   {"exp", "", {f({3, 4})}, [](const Inputs& x) { return exp(x[0]); }}
//
// Helpers in op_list.cpp expand a case into its layouts: the same call with one input stored
// transposed, permuted, as a stepped slice or broadcast (stride 0) and viewed back to the shape
// the op sees, inside the call (gradcheck copies its inputs into contiguous leaves, so a view made
// outside would test nothing). Elementwise ops also run on 0-d, size-1 and empty shapes.
//
// To add an op: add its case(s) to op_list.cpp in the section of its header. That is all: the
// gradcheck, the dtype check, the GPU parity test and the benchmark pick it up.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "mmgrad/mmgrad.h"

namespace mmgrad::oplist {

// Where floating input values come from, so that every checked point is differentiable.
enum class Domain {
  Any,       // standard normal
  Wide,      // N(0, 4): spreads softmax rows out
  Positive,  // |z| + 0.5 (log, sqrt, pow bases, divisors)
  AwayZero,  // sign(z) (|z| + 0.2): kinks at 0 (abs, relu) and division
  AwayHalf,  // normal values at least 0.05 from -0.5, 0 and 0.5 (the clamp bounds used below)
  Ties,      // small integers in [-3, 3]: equal values are common (comparisons, stable sort)
};

// One input of a case.
struct Arg {
  enum class Kind {
    Float,     // floating, a leaf that requires grad (checked by gradcheck)
    Constant,  // floating, no gradient (running statistics, an operand held fixed)
    Index,     // int64 values in [0, high)
    Mask,      // bool, true with probability p
    Value,     // floating leaf (requires grad) with every element equal to `value`
    Fixed,     // exactly `fixed` (int64 targets with ignore_index, hand-made masks)
  };
  Kind kind = Kind::Float;
  Shape shape;
  Domain domain = Domain::Any;
  int64_t high = 0;    // Index
  double value = 0.5;  // Mask: probability of true; Value: the value
  Tensor fixed = {};   // Fixed (a CPU tensor; floating ones are leaves that require grad)
  bool differentiable() const {
    return kind == Kind::Float || kind == Kind::Value ||
           (kind == Kind::Fixed && fixed.is_floating_point());
  }
};
Arg f(const Shape& s, Domain d = Domain::Any);  // Kind::Float
Arg constant(const Shape& s, Domain d = Domain::Any);
Arg index(const Shape& s, int64_t high);
Arg mask(const Shape& s, double p = 0.5);
Arg value(const Shape& s, double v);
Arg fixed(const Tensor& t);

// How one input is stored before the op sees it (see layout_name in op_list.cpp).
enum class Layout { Contiguous, Transposed, Permuted, Stepped, Expanded };
const char* layout_name(Layout l);

using Inputs = std::vector<Tensor>;
using OpFn = std::function<Tensor(const Inputs&)>;

// Case flags.
enum : unsigned {
  kNoGrad = 1u,  // no gradient (comparisons, argmax, sort, one_hot): forward and parity only; the
                 // test checks that the output indeed does not require grad
  kGemm = 2u,    // float32 result goes through a GEMM: parity tolerance 1e-4 instead of 1e-5
};

struct OpCase {
  std::string op;       // the public function this case calls, as declared in its header
  std::string variant;  // attributes in words ("dim 1 keepdim"); may be empty
  std::vector<Arg> args;
  OpFn fn;  // calls the op on inputs that already have their layout
  unsigned flags = 0;
  double tol32 = 1e-5;  // float32 forward against float64: |y32 - y64| <= tol32 max(1, |y64|)
  // Benchmark-size inputs (bench_all --op); empty: the op is timed at its test size. bench_flops:
  // the flops of forward + backward at that size, when a GFLOP/s figure means something.
  std::vector<Arg> bench = {};
  double bench_flops = 0;

  // Filled in by the list: its header ("elementwise", ...), the layout of input view_arg, and a
  // unique readable name (op, variant, input shapes, layout).
  std::string group = {};
  Layout layout = Layout::Contiguous;
  int view_arg = -1;
  std::string name = {};

  bool has_grad() const { return !(flags & kNoGrad); }
};

// Every case, in header order. Built once.
const std::vector<OpCase>& op_cases();
// The groups (headers) in the list, in order; a driver that runs the list per group must cover
// exactly these (test_op_list checks it).
std::vector<std::string> op_groups();
// The distinct op names, in order.
std::vector<std::string> op_names();

// Public declarations with no case, each with the reason (checked by test_op_list).
struct Exemption {
  const char* op;
  const char* why;
};
const std::vector<Exemption>& exemptions();

// The inputs of case c as tensors of dtype `dt` (floating inputs; int64 and bool inputs keep
// their dtype) on `device`: fresh leaves, differentiable ones requiring grad, stored in the
// case's layout (so a Layout::Transposed input is a contiguous leaf of the transposed shape).
// The values depend only on the case's name and the argument position: the same for any dtype
// and device up to rounding. bench = true: the benchmark-size inputs (c.bench when given).
Inputs make_inputs(const OpCase& c, DType dt = kFloat64, Device device = kCPU, bool bench = false);

// Runs the case on the leaves from make_inputs: applies the layout view, then c.fn.
Tensor call(const OpCase& c, const Inputs& leaves);

// A GradFn-shaped wrapper of call(c, .) (for gradcheck and other drivers).
OpFn as_fn(const OpCase& c);

}  // namespace mmgrad::oplist
