// Elementwise ops: each forward, then its backward (the local derivative times the incoming
// gradient, summed back over broadcast dimensions).
#include "ops/elementwise.h"

#include <cmath>

#include "ops/common.h"

namespace mmgrad {
namespace {

bool is_compare(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le ||
         op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::LogicalAnd ||
         op == BinaryOp::LogicalOr;
}

// Checks, broadcasts and runs a binary kernel; the result is a new contiguous tensor.
Tensor binary_kernel(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_defined(name, a, "a");
  check_defined(name, b, "b");
  check_same_device(name, a, b);
  check_same_dtype(name, a, b);
  const bool compare = is_compare(op);
  if (!compare) {
    MMGRAD_CHECK(a.dtype() != DType::Bool, name,
                 ": arithmetic on bool tensors is not supported, got ", describe(a),
                 " (convert with .to(kFloat32) or .to(kInt64))");
  }
  if (op == BinaryOp::Div || op == BinaryOp::Pow || op >= BinaryOp::ReluGrad) {
    if (op != BinaryOp::LogicalAnd && op != BinaryOp::LogicalOr)
      check_floating(name, a, "a");
  }
  Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, TensorOptions(compare ? DType::Bool : a.dtype()).device(a.device()));
  if (out.numel() > 0)
    backend(a.device()).binary(op, broadcast_desc(a, shape), broadcast_desc(b, shape), out.desc());
  return out;
}

Tensor unary_kernel(UnaryOp op, const Tensor& x, double alpha = 0.0, double beta = 0.0) {
  Tensor out = empty_as(x, x.shape());
  if (out.numel() > 0) backend(x.device()).unary(op, x.desc(), out.desc(), alpha, beta);
  return out;
}

// A floating-point input for a math function like exp; names the op on error.
void check_math(const char* name, const Tensor& x) { check_floating(name, x, "input"); }

// Arithmetic works on float and int64 tensors, not bool.
void check_arith(const char* name, const Tensor& x) {
  check_defined(name, x, "input");
  MMGRAD_CHECK(x.dtype() != DType::Bool, name, ": arithmetic on bool tensors is not supported, got ",
               describe(x), " (convert with .to(kFloat32))");
}

Tensor scalar_like(const Tensor& t, double v) { return Tensor::scalar(v, t.options()); }

// Whether v survives conversion to dtype t unchanged (0.5 in an int64 tensor would become 0).
bool representable(DType t, double v) {
  if (is_floating(t)) return true;
  if (t == DType::Bool) return v == 0.0 || v == 1.0;
  return v == std::trunc(v) && std::abs(v) < 9.2e18;  // int64 (NaN and inf fail too)
}

// Integer tensors take integer scalars only: an int64 tensor times 0.5 would silently truncate.
void check_integral_scalar(const char* name, const Tensor& x, double v) {
  MMGRAD_CHECK(representable(x.dtype(), v), name, ": scalar ", v, " cannot be applied to ",
               describe(x), " without truncating it (convert with .to(kFloat32) first)");
}

// A comparison with a scalar. On int64/bool tensors a scalar that their dtype cannot hold
// (x < 0.5) is compared in float64 instead, so the answer is exact rather than truncated.
Tensor compare_scalar(BinaryOp op, const char* name, const Tensor& a, double b) {
  check_defined(name, a);
  if (representable(a.dtype(), b)) return binary_kernel(op, name, a, scalar_like(a, b));
  return binary_kernel(op, name, a.to(DType::Float64),
                       Tensor::scalar(b, TensorOptions(DType::Float64).device(a.device())));
}

}  // namespace

// ---- add, sub: y = a ± b ---------------------------------------------------------------------
// dy/da = 1 and dy/db = ±1; where an input was broadcast, its gradient sums over those dims.
struct AddBackward : Node {
  double sign_b = 1.0;  // -1 for sub
  const char* name() const override { return sign_b > 0 ? "add" : "sub"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor ga, gb;
    if (needs_grad(0)) ga = sum_to(g, input_shapes[0]);
    if (needs_grad(1)) gb = sum_to(sign_b > 0 ? g : neg(g), input_shapes[1]);
    return {ga, gb};
  }
};

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::Add, "add", a, b);
  make_node<AddBackward>(out, {a, b});
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::Sub, "sub", a, b);
  if (auto node = make_node<AddBackward>(out, {a, b})) node->sign_b = -1.0;
  return out;
}

// ---- add a scalar: y = x + c,  dy/dx = 1 ----------------------------------------------------
struct AddScalarBackward : Node {
  const char* name() const override { return "add_scalar"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g}; }
};

Tensor add(const Tensor& a, double b) {
  check_arith("add", a);
  check_integral_scalar("add", a, b);
  Tensor out = unary_kernel(UnaryOp::AddScalar, a, b);
  make_node<AddScalarBackward>(out, {a});
  return out;
}

// ---- mul: y = a * b,  dy/da = b, dy/db = a ---------------------------------------------------
struct MulBackward : Node {
  SavedTensor a, b;
  const char* name() const override { return "mul"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor ga, gb;
    if (needs_grad(0)) ga = sum_to(mul(g, b.get()), input_shapes[0]);
    if (needs_grad(1)) gb = sum_to(mul(g, a.get()), input_shapes[1]);
    return {ga, gb};
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
};

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::Mul, "mul", a, b);
  if (auto node = make_node<MulBackward>(out, {a, b})) {
    if (node->needs_grad(1)) node->a = a;  // save only what the backward will read
    if (node->needs_grad(0)) node->b = b;
  }
  return out;
}

// ---- mul by a scalar: y = c x,  dy/dx = c ----------------------------------------------------
struct MulScalarBackward : Node {
  double c = 1.0;
  const char* name() const override { return "mul_scalar"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {mul(g, c)}; }
};

Tensor mul(const Tensor& a, double b) {
  check_arith("mul", a);
  check_integral_scalar("mul", a, b);
  Tensor out = unary_kernel(UnaryOp::MulScalar, a, b);
  if (auto node = make_node<MulScalarBackward>(out, {a})) node->c = b;
  return out;
}

// ---- div: y = a / b,  dy/da = 1/b, dy/db = -a/b^2 = -y/b -------------------------------------
struct DivBackward : Node {
  SavedTensor b, y;
  const char* name() const override { return "div"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor ga, gb;
    Tensor g_over_b = div(g, b.get());
    if (needs_grad(0)) ga = sum_to(g_over_b, input_shapes[0]);
    if (needs_grad(1)) gb = sum_to(neg(mul(g_over_b, y.get())), input_shapes[1]);
    return {ga, gb};
  }
  void release_saved() override {
    b.reset();
    y.reset();
  }
};

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::Div, "div", a, b);
  if (auto node = make_node<DivBackward>(out, {a, b})) {
    node->b = b;
    if (node->needs_grad(1)) node->y = out;
  }
  return out;
}

Tensor operator/(double a, const Tensor& b) {
  check_math("div", b);
  return div(scalar_like(b, a), b);
}

// ---- neg: y = -x ------------------------------------------------------------------------------
struct NegBackward : Node {
  const char* name() const override { return "neg"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {neg(g)}; }
};

Tensor neg(const Tensor& x) {
  check_arith("neg", x);
  Tensor out = unary_kernel(UnaryOp::Neg, x);
  make_node<NegBackward>(out, {x});
  return out;
}

// ---- pow with a constant exponent: y = x^p,  dy/dx = p x^(p-1) --------------------------------
struct PowScalarBackward : Node {
  SavedTensor x;
  double p = 1.0;
  const char* name() const override { return "pow"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    if (p == 0.0) return {zeros_like(g)};
    return {mul(g, mul(pow(x.get(), p - 1.0), p))};
  }
  void release_saved() override { x.reset(); }
};

Tensor pow(const Tensor& x, double exponent) {
  check_math("pow", x);
  Tensor out = exponent == 2.0 ? unary_kernel(UnaryOp::Square, x)
                               : unary_kernel(UnaryOp::Pow, x, exponent);
  if (auto node = make_node<PowScalarBackward>(out, {x})) {
    node->x = x;
    node->p = exponent;
  }
  return out;
}

// ---- pow with a tensor exponent: y = a^b,  dy/da = b a^(b-1),  dy/db = y log(a) ----------------
struct PowBackward : Node {
  SavedTensor a, b, y;
  const char* name() const override { return "pow"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor ga, gb;
    if (needs_grad(0))
      ga = sum_to(mul(g, mul(b.get(), pow(a.get(), sub(b.get(), ones_like(b.get()))))),
                  input_shapes[0]);
    if (needs_grad(1)) gb = sum_to(mul(g, mul(y.get(), log(a.get()))), input_shapes[1]);
    return {ga, gb};
  }
  void release_saved() override {
    a.reset();
    b.reset();
    y.reset();
  }
};

Tensor pow(const Tensor& base, const Tensor& exponent) {
  Tensor out = binary_kernel(BinaryOp::Pow, "pow", base, exponent);
  if (auto node = make_node<PowBackward>(out, {base, exponent})) {
    node->a = base;
    node->b = exponent;
    node->y = out;
  }
  return out;
}

// ---- square: y = x^2,  dy/dx = 2x -------------------------------------------------------------
Tensor square(const Tensor& x) { return pow(x, 2.0); }

// ---- exp: y = e^x,  dy/dx = y ----------------------------------------------------------------
struct ExpBackward : Node {
  SavedTensor y;
  const char* name() const override { return "exp"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {mul(g, y.get())}; }
  void release_saved() override { y.reset(); }
};

Tensor exp(const Tensor& x) {
  check_math("exp", x);
  Tensor out = unary_kernel(UnaryOp::Exp, x);
  if (auto node = make_node<ExpBackward>(out, {x})) node->y = out;
  return out;
}

// ---- log: y = ln x,  dy/dx = 1/x --------------------------------------------------------------
struct LogBackward : Node {
  SavedTensor x;
  const char* name() const override { return "log"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {div(g, x.get())}; }
  void release_saved() override { x.reset(); }
};

Tensor log(const Tensor& x) {
  check_math("log", x);
  Tensor out = unary_kernel(UnaryOp::Log, x);
  if (auto node = make_node<LogBackward>(out, {x})) node->x = x;
  return out;
}

// ---- sqrt: y = sqrt(x),  dy/dx = 1 / (2 y) ------------------------------------------------------
struct SqrtBackward : Node {
  SavedTensor y;
  const char* name() const override { return "sqrt"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {div(mul(g, 0.5), y.get())};
  }
  void release_saved() override { y.reset(); }
};

Tensor sqrt(const Tensor& x) {
  check_math("sqrt", x);
  Tensor out = unary_kernel(UnaryOp::Sqrt, x);
  if (auto node = make_node<SqrtBackward>(out, {x})) node->y = out;
  return out;
}

// ---- abs: y = |x|,  dy/dx = sign(x) (0 at 0) --------------------------------------------------
struct AbsBackward : Node {
  SavedTensor x;
  const char* name() const override { return "abs"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {mul(g, sign(x.get()))}; }
  void release_saved() override { x.reset(); }
};

Tensor abs(const Tensor& x) {
  check_arith("abs", x);
  Tensor out = unary_kernel(UnaryOp::Abs, x);
  if (auto node = make_node<AbsBackward>(out, {x})) node->x = x;
  return out;
}

Tensor sign(const Tensor& x) {
  check_arith("sign", x);
  return unary_kernel(UnaryOp::Sign, x);
}

// ---- clamp: y = min(max(x, lo), hi),  dy/dx = 1 inside [lo, hi], 0 outside ---------------------
struct ClampBackward : Node {
  SavedTensor x;
  double lo = 0, hi = 0;
  const char* name() const override { return "clamp"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor inside = logical_and(ge(x.get(), lo), le(x.get(), hi));
    return {where(inside, g, 0.0)};
  }
  void release_saved() override { x.reset(); }
};

Tensor clamp(const Tensor& x, double min, double max) {
  check_arith("clamp", x);
  MMGRAD_CHECK(!(min > max), "clamp: min (", min, ") is greater than max (", max, ")");
  Tensor out = unary_kernel(UnaryOp::Clamp, x, min, max);
  if (auto node = make_node<ClampBackward>(out, {x})) {
    node->x = x;
    node->lo = min;
    node->hi = max;
  }
  return out;
}

Tensor clamp_min(const Tensor& x, double min) { return clamp(x, min, INFINITY); }
Tensor clamp_max(const Tensor& x, double max) { return clamp(x, -INFINITY, max); }

// ---- maximum / minimum: the gradient goes to the larger (smaller) input; ties split it ----------
struct ExtremumBackward : Node {
  SavedTensor a, b;
  bool is_max = true;
  const char* name() const override { return is_max ? "maximum" : "minimum"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor wins_a = is_max ? gt(a.get(), b.get()) : lt(a.get(), b.get());
    Tensor tie = eq(a.get(), b.get());
    Tensor half = mul(g, 0.5);
    Tensor ga, gb;
    Tensor zero = zeros_like(g);
    // a gets g where it wins, g/2 on ties; b gets g where a neither wins nor ties, g/2 on ties.
    if (needs_grad(0)) ga = sum_to(where(wins_a, g, where(tie, half, zero)), input_shapes[0]);
    if (needs_grad(1))
      gb = sum_to(where(wins_a, zero, where(tie, half, g)), input_shapes[1]);
    return {ga, gb};
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
};

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::Maximum, "maximum", a, b);
  if (auto node = make_node<ExtremumBackward>(out, {a, b})) {
    node->a = a;
    node->b = b;
  }
  return out;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::Minimum, "minimum", a, b);
  if (auto node = make_node<ExtremumBackward>(out, {a, b})) {
    node->a = a;
    node->b = b;
    node->is_max = false;
  }
  return out;
}

// ---- activations with fused backward kernels -------------------------------------------------
// relu:    dy/dx = [x > 0]
// gelu:    y = x Phi(x),            dy/dx = Phi(x) + x phi(x)
// sigmoid: y = 1 / (1 + e^-x),      dy/dx = y (1 - y)
// tanh:                             dy/dx = 1 - y^2
// Each backward is one pass of a fused binary kernel (grad, saved) -> grad_input.
struct ActivationBackward : Node {
  SavedTensor saved;  // x for relu/gelu, y for sigmoid/tanh
  BinaryOp grad_op = BinaryOp::ReluGrad;
  const char* op_name = "relu";
  const char* name() const override { return op_name; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& s = saved.get();
    Tensor gx = empty_as(g, g.shape());
    if (gx.numel() > 0) backend(g.device()).binary(grad_op, g.desc(), s.desc(), gx.desc());
    return {gx};
  }
  void release_saved() override { saved.reset(); }
};

namespace {
Tensor activation(const char* name, UnaryOp fwd, BinaryOp grad_op, bool save_output,
                  const Tensor& x) {
  check_math(name, x);
  Tensor out = unary_kernel(fwd, x);
  if (auto node = make_node<ActivationBackward>(out, {x})) {
    node->saved = save_output ? out : x;
    node->grad_op = grad_op;
    node->op_name = name;
  }
  return out;
}
}  // namespace

Tensor relu(const Tensor& x) {
  return activation("relu", UnaryOp::Relu, BinaryOp::ReluGrad, false, x);
}
Tensor gelu(const Tensor& x) {
  return activation("gelu", UnaryOp::Gelu, BinaryOp::GeluGrad, false, x);
}
Tensor sigmoid(const Tensor& x) {
  return activation("sigmoid", UnaryOp::Sigmoid, BinaryOp::SigmoidGrad, true, x);
}
Tensor tanh(const Tensor& x) {
  return activation("tanh", UnaryOp::Tanh, BinaryOp::TanhGrad, true, x);
}

// ---- where: y = cond ? a : b,  dy/da = [cond], dy/db = [not cond] ------------------------------
struct WhereBackward : Node {
  SavedTensor cond;
  const char* name() const override { return "where"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor zero = zeros_like(g);
    Tensor ga, gb;
    if (needs_grad(1)) ga = sum_to(where(cond.get(), g, zero), input_shapes[1]);
    if (needs_grad(2)) gb = sum_to(where(cond.get(), zero, g), input_shapes[2]);
    return {Tensor(), ga, gb};
  }
  void release_saved() override { cond.reset(); }
};

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  const char* op = "where";
  check_dtype(op, cond, DType::Bool, "condition");
  check_defined(op, a, "a");
  check_defined(op, b, "b");
  check_same_device(op, cond, a);
  check_same_device(op, a, b);
  check_same_dtype(op, a, b);
  Shape shape = broadcast_shapes(op, broadcast_shapes(op, cond.shape(), a.shape()), b.shape());
  Tensor out = empty_as(a, shape);
  if (out.numel() > 0)
    backend(a.device()).where(broadcast_desc(cond, shape), broadcast_desc(a, shape),
                              broadcast_desc(b, shape), out.desc());
  if (auto node = make_node<WhereBackward>(out, {cond, a, b})) node->cond = cond;
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, double b) {
  check_defined("where", a, "a");
  check_integral_scalar("where", a, b);
  return where(cond, a, scalar_like(a, b));
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined("masked_fill", x, "input");
  check_dtype("masked_fill", mask, DType::Bool, "mask");
  check_integral_scalar("masked_fill", x, value);
  Shape s = broadcast_shapes("masked_fill", x.shape(), mask.shape());
  MMGRAD_CHECK(s == x.shape(), "masked_fill: mask of shape ", mask.shape().str(),
               " does not broadcast to the input's shape ", x.shape().str());
  return where(mask, scalar_like(x, value), x);
}

// ---- comparisons and logic (no gradient) -------------------------------------------------------
Tensor eq(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Eq, "eq", a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Ne, "ne", a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Lt, "lt", a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Le, "le", a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Gt, "gt", a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Ge, "ge", a, b); }
Tensor eq(const Tensor& a, double b) { return compare_scalar(BinaryOp::Eq, "eq", a, b); }
Tensor ne(const Tensor& a, double b) { return compare_scalar(BinaryOp::Ne, "ne", a, b); }
Tensor lt(const Tensor& a, double b) { return compare_scalar(BinaryOp::Lt, "lt", a, b); }
Tensor le(const Tensor& a, double b) { return compare_scalar(BinaryOp::Le, "le", a, b); }
Tensor gt(const Tensor& a, double b) { return compare_scalar(BinaryOp::Gt, "gt", a, b); }
Tensor ge(const Tensor& a, double b) { return compare_scalar(BinaryOp::Ge, "ge", a, b); }

Tensor logical_and(const Tensor& a, const Tensor& b) {
  check_dtype("logical_and", a, DType::Bool, "a");
  check_dtype("logical_and", b, DType::Bool, "b");
  return binary_kernel(BinaryOp::LogicalAnd, "logical_and", a, b);
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  check_dtype("logical_or", a, DType::Bool, "a");
  check_dtype("logical_or", b, DType::Bool, "b");
  return binary_kernel(BinaryOp::LogicalOr, "logical_or", a, b);
}
Tensor logical_not(const Tensor& a) {
  check_dtype("logical_not", a, DType::Bool, "a");
  return eq(a, Tensor::scalar(0.0, a.options()));
}

// ---- Tensor methods ---------------------------------------------------------------------------
Tensor Tensor::neg() const { return mmgrad::neg(*this); }
Tensor Tensor::exp() const { return mmgrad::exp(*this); }
Tensor Tensor::log() const { return mmgrad::log(*this); }
Tensor Tensor::sqrt() const { return mmgrad::sqrt(*this); }
Tensor Tensor::abs() const { return mmgrad::abs(*this); }
Tensor Tensor::pow(double e) const { return mmgrad::pow(*this, e); }
Tensor Tensor::pow(const Tensor& e) const { return mmgrad::pow(*this, e); }
Tensor Tensor::square() const { return mmgrad::square(*this); }
Tensor Tensor::clamp(double lo, double hi) const { return mmgrad::clamp(*this, lo, hi); }
Tensor Tensor::relu() const { return mmgrad::relu(*this); }
Tensor Tensor::gelu() const { return mmgrad::gelu(*this); }
Tensor Tensor::sigmoid() const { return mmgrad::sigmoid(*this); }
Tensor Tensor::tanh() const { return mmgrad::tanh(*this); }
Tensor Tensor::masked_fill(const Tensor& m, double v) const {
  return mmgrad::masked_fill(*this, m, v);
}
Tensor Tensor::eq(const Tensor& o) const { return mmgrad::eq(*this, o); }
Tensor Tensor::ne(const Tensor& o) const { return mmgrad::ne(*this, o); }
Tensor Tensor::lt(const Tensor& o) const { return mmgrad::lt(*this, o); }
Tensor Tensor::le(const Tensor& o) const { return mmgrad::le(*this, o); }
Tensor Tensor::gt(const Tensor& o) const { return mmgrad::gt(*this, o); }
Tensor Tensor::ge(const Tensor& o) const { return mmgrad::ge(*this, o); }
Tensor Tensor::eq(double v) const { return mmgrad::eq(*this, v); }
Tensor Tensor::lt(double v) const { return mmgrad::lt(*this, v); }
Tensor Tensor::gt(double v) const { return mmgrad::gt(*this, v); }

}  // namespace mmgrad
