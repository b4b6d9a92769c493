// Elementwise ops. A forward is one kernel call (kernels/element_ops.h holds the scalar formula
// every backend runs); a backward is one row of the gradient tables below: the local derivative
// times the incoming gradient, summed back over the dimensions an input was broadcast along.
#include "mmgrad/ops/elementwise.h"

#include <cmath>

#include "mmgrad/ops/common.h"

namespace mmgrad {
namespace {

bool is_compare(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le ||
         op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::LogicalAnd ||
         op == BinaryOp::LogicalOr;
}

// Checks, broadcasts and runs a binary kernel; the result is a new contiguous tensor.
Tensor binary_kernel(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  OpScope scope(name);  // a broadcast result too large to allocate names this op
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
    if (op != BinaryOp::LogicalAnd && op != BinaryOp::LogicalOr) check_floating(name, a, "a");
  }
  Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor out =
      Tensor::empty(shape, TensorOptions(compare ? DType::Bool : a.dtype()).device(a.device()));
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
  MMGRAD_CHECK(x.dtype() != DType::Bool, name,
               ": arithmetic on bool tensors is not supported, got ", describe(x),
               " (convert with .to(kFloat32))");
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

// ==== The gradient tables ===================================================================
// Every elementwise op with a gradient is one row: its name, the kernel its forward runs, what
// its backward needs saved, and its rule, "local derivative × upstream gradient g" (the chain
// rule, as micrograd writes it). The rows are the whole backward of these ops; UnaryBackward
// and BinaryBackward below are the only Nodes, and they only save what a row asks for and apply
// its rule. Find an op's rule by its name: search for `{"exp"`.
//
// In a rule, g is dL/dy; x the input and y the output (unary); a, b the inputs and y the output
// (binary); p1, p2 the op's scalar parameters (pow's exponent, clamp's bounds). A rule may read
// only what its row saves.

// Which tensors a rule reads, as bits: the node saves exactly those (for the inputs that need a
// gradient), nothing more.
enum Saves : unsigned { kNothing = 0, kX = 1, kY = 2, kA = 4, kB = 8 };

// The fused backward kernels: one pass (grad, saved) -> grad_input instead of three ops.
Tensor fused_grad(BinaryOp op, const Tensor& g, const Tensor& saved) {
  Tensor gx = empty_as(g, g.shape());
  if (gx.numel() > 0) backend(g.device()).binary(op, g.desc(), saved.desc(), gx.desc());
  return gx;
}

// silu: y = x s with s = sigmoid(x), so dy/dx = s + x s (1 - s) = s (1 + x (1 - s)). Composed
// from differentiable ops, so it runs on every device without a kernel of its own.
Tensor silu_grad(const Tensor& g, const Tensor& x) {
  Tensor s = sigmoid(x);
  return mul(g, mul(s, add(mul(x, sub(ones_like(s), s)), 1.0)));
}

struct UnaryRule {
  const char* name;
  UnaryOp kernel;
  unsigned saves;  // kX and/or kY
  Tensor (*grad)(const Tensor& g, const Tensor& x, const Tensor& y, double p1, double p2);
};

// A rule written as the math: UNARY_GRAD(mul(g, y)) is a function of (g, x, y, p1, p2) that
// returns that expression; BINARY_GRAD(...) the same for (g, a, b, y).
#define UNARY_GRAD(expr)                                                 \
  []([[maybe_unused]] const Tensor& g, [[maybe_unused]] const Tensor& x, \
     [[maybe_unused]] const Tensor& y, [[maybe_unused]] double p1,       \
     [[maybe_unused]] double p2) -> Tensor { return expr; }
#define BINARY_GRAD(expr)                                                \
  []([[maybe_unused]] const Tensor& g, [[maybe_unused]] const Tensor& a, \
     [[maybe_unused]] const Tensor& b,                                   \
     [[maybe_unused]] const Tensor& y) -> Tensor { return expr; }

// clang-format off
//                   name          forward kernel       saves     dL/dx = g × dy/dx
constexpr UnaryRule kNeg    {"neg",        UnaryOp::Neg,        kNothing, UNARY_GRAD(neg(g))};
constexpr UnaryRule kAddC   {"add_scalar", UnaryOp::AddScalar,  kNothing, UNARY_GRAD(g)};                     // x + p1
constexpr UnaryRule kMulC   {"mul_scalar", UnaryOp::MulScalar,  kNothing, UNARY_GRAD(mul(g, p1))};            // x * p1
constexpr UnaryRule kExp    {"exp",        UnaryOp::Exp,        kY,       UNARY_GRAD(mul(g, y))};
constexpr UnaryRule kLog    {"log",        UnaryOp::Log,        kX,       UNARY_GRAD(div(g, x))};
constexpr UnaryRule kSqrt   {"sqrt",       UnaryOp::Sqrt,       kY,       UNARY_GRAD(div(mul(g, 0.5), y))};   // 1 / (2 sqrt x)
constexpr UnaryRule kAbs    {"abs",        UnaryOp::Abs,        kX,       UNARY_GRAD(mul(g, sign(x)))};       // sign(0) = 0
constexpr UnaryRule kSquare {"pow",        UnaryOp::Square,     kX,       UNARY_GRAD(mul(g, mul(x, 2.0)))};
constexpr UnaryRule kPowC   {"pow",        UnaryOp::Pow,        kX,       UNARY_GRAD(p1 == 0.0 ? zeros_like(g)  // x^p1
                                                                                   : mul(g, mul(pow(x, p1 - 1.0), p1)))};
constexpr UnaryRule kClamp  {"clamp",      UnaryOp::Clamp,      kX,       UNARY_GRAD(where(logical_and(ge(x, p1), le(x, p2)), g, 0.0))};  // 1 inside [p1, p2] (bounds included), 0 at NaN
constexpr UnaryRule kRelu   {"relu",       UnaryOp::Relu,       kX,       UNARY_GRAD(fused_grad(BinaryOp::ReluGrad, g, x))};     // [not x <= 0]: 0 at x = 0, 1 at NaN
constexpr UnaryRule kGelu   {"gelu",       UnaryOp::Gelu,       kX,       UNARY_GRAD(fused_grad(BinaryOp::GeluGrad, g, x))};     // Phi(x) + x phi(x)
constexpr UnaryRule kGeluT  {"gelu",       UnaryOp::GeluTanh,   kX,       UNARY_GRAD(fused_grad(BinaryOp::GeluTanhGrad, g, x))}; // of x/2 (1 + tanh u)
constexpr UnaryRule kSigmoid{"sigmoid",    UnaryOp::Sigmoid,    kY,       UNARY_GRAD(fused_grad(BinaryOp::SigmoidGrad, g, y))};  // y (1 - y)
constexpr UnaryRule kTanh   {"tanh",       UnaryOp::Tanh,       kY,       UNARY_GRAD(fused_grad(BinaryOp::TanhGrad, g, y))};     // 1 - y^2
constexpr UnaryRule kSilu   {"silu",       UnaryOp::Silu,       kX,       UNARY_GRAD(silu_grad(g, x))};  // s (1 + x (1 - s)), s = sigmoid(x)
// clang-format on

// A binary rule gives the gradient of both inputs; BinaryBackward sums each back over the
// dimensions its input was broadcast along (sum_to).
struct BinaryRule {
  const char* name;
  BinaryOp kernel;
  unsigned saves_for_a, saves_for_b;  // what the rule reads for dL/da, for dL/db
  Tensor (*grad_a)(const Tensor& g, const Tensor& a, const Tensor& b, const Tensor& y);
  Tensor (*grad_b)(const Tensor& g, const Tensor& a, const Tensor& b, const Tensor& y);
};

// maximum/minimum, PyTorch's rule: an input gets no gradient where it loses (`loses`: a < b for
// a in maximum, ...), half where the two tie, and all of it otherwise -- so where either input
// is NaN (no comparison holds) both get the whole gradient, as in PyTorch.
Tensor extreme_grad(const Tensor& g, const Tensor& loses, const Tensor& tie) {
  return where(loses, zeros_like(g), where(tie, mul(g, 0.5), g));
}

// pow(a, b), PyTorch's masks: dy/da = b a^(b-1) but 0 where b == 0 (a^0 = 1 is constant even at
// a = 0, where b a^(b-1) would be 0 * inf = NaN); dy/db = a^b ln a but 0 where a == 0 and b >= 0
// (0^b is constant 0 or 1 there, where y ln a would be 0 * -inf = NaN).
Tensor pow_grad_base(const Tensor& g, const Tensor& a, const Tensor& b) {
  return where(ne(b, 0.0), mul(g, mul(b, pow(a, sub(b, ones_like(b))))), 0.0);
}
Tensor pow_grad_exponent(const Tensor& g, const Tensor& a, const Tensor& b, const Tensor& y) {
  Tensor constant = logical_and(eq(a, 0.0), ge(b, 0.0));
  return where(logical_not(constant), mul(g, mul(y, log(a))), 0.0);
}

// clang-format off
//                    name       forward kernel     saves for a, b   dL/da = g × dy/da                     dL/db = g × dy/db
constexpr BinaryRule kAdd{"add",     BinaryOp::Add,     kNothing, kNothing, BINARY_GRAD(g),                       BINARY_GRAD(g)};
constexpr BinaryRule kSub{"sub",     BinaryOp::Sub,     kNothing, kNothing, BINARY_GRAD(g),                       BINARY_GRAD(neg(g))};
constexpr BinaryRule kMul{"mul",     BinaryOp::Mul,     kB, kA,             BINARY_GRAD(mul(g, b)),               BINARY_GRAD(mul(g, a))};
constexpr BinaryRule kDiv{"div",     BinaryOp::Div,     kB, kB | kY,        BINARY_GRAD(div(g, b)),               BINARY_GRAD(neg(mul(div(g, b), y)))};  // -a/b^2 = -y/b
constexpr BinaryRule kPow{"pow",     BinaryOp::Pow,     kA | kB, kA | kB | kY, BINARY_GRAD(pow_grad_base(g, a, b)),          // b a^(b-1), 0 where b == 0
                                                                              BINARY_GRAD(pow_grad_exponent(g, a, b, y))};  // a^b ln a, 0 where a == 0, b >= 0
constexpr BinaryRule kMax{"maximum", BinaryOp::Maximum, kA | kB, kA | kB,   BINARY_GRAD(extreme_grad(g, lt(a, b), eq(a, b))),
                                                                            BINARY_GRAD(extreme_grad(g, gt(a, b), eq(a, b)))};
constexpr BinaryRule kMin{"minimum", BinaryOp::Minimum, kA | kB, kA | kB,   BINARY_GRAD(extreme_grad(g, gt(a, b), eq(a, b))),
                                                                            BINARY_GRAD(extreme_grad(g, lt(a, b), eq(a, b)))};
// clang-format on
#undef UNARY_GRAD
#undef BINARY_GRAD

// ==== The two Nodes that apply the tables ====================================================
struct UnaryBackward : Node {
  const UnaryRule* rule = nullptr;
  double p1 = 0, p2 = 0;
  SavedTensor x{this}, y{this};
  const char* name() const override { return rule->name; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor none;
    return {rule->grad(g, x.defined() ? x.get() : none, y.defined() ? y.get() : none, p1, p2)};
  }
};

struct BinaryBackward : Node {
  const BinaryRule* rule = nullptr;
  SavedTensor a{this}, b{this}, y{this};
  const char* name() const override { return rule->name; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor none;
    const Tensor& av = a.defined() ? a.get() : none;
    const Tensor& bv = b.defined() ? b.get() : none;
    const Tensor& yv = y.defined() ? y.get() : none;
    Tensor ga, gb;
    if (needs_grad(0)) ga = sum_to(rule->grad_a(g, av, bv, yv), input_shapes[0]);
    if (needs_grad(1)) gb = sum_to(rule->grad_b(g, av, bv, yv), input_shapes[1]);
    return {ga, gb};
  }
};

// Runs a unary row's forward kernel and, when a gradient is needed, records its node, saving
// what the row reads.
Tensor unary_op(const UnaryRule& rule, const Tensor& x, double p1 = 0.0, double p2 = 0.0) {
  Tensor out = unary_kernel(rule.kernel, x, p1, p2);
  if (auto node = make_node<UnaryBackward>(out, {x})) {
    node->rule = &rule;
    node->p1 = p1;
    node->p2 = p2;
    if (rule.saves & kX) node->x = x;
    if (rule.saves & kY) node->y = out;
  }
  return out;
}

// A unary row for a floating-point input only: checks that, then runs the row.
Tensor math_op(const UnaryRule& rule, const Tensor& x) {
  check_math(rule.name, x);
  return unary_op(rule, x);
}

// The same for a binary row; saves only what the gradients that are needed read.
Tensor binary_op(const BinaryRule& rule, const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(rule.kernel, rule.name, a, b);
  if (auto node = make_node<BinaryBackward>(out, {a, b})) {
    node->rule = &rule;
    const unsigned saves = (node->needs_grad(0) ? rule.saves_for_a : 0u) |
                           (node->needs_grad(1) ? rule.saves_for_b : 0u);
    if (saves & kA) node->a = a;
    if (saves & kB) node->b = b;
    if (saves & kY) node->y = out;
  }
  return out;
}

}  // namespace

// ==== The ops ================================================================================
// Each checks its input and runs its row. Binary ops broadcast (PyTorch's rules).
Tensor add(const Tensor& a, const Tensor& b) { return binary_op(kAdd, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(kSub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(kMul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(kDiv, a, b); }
Tensor pow(const Tensor& base, const Tensor& exponent) { return binary_op(kPow, base, exponent); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op(kMax, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary_op(kMin, a, b); }

Tensor operator/(double a, const Tensor& b) {
  check_math("div", b);
  return div(scalar_like(b, a), b);
}

Tensor add(const Tensor& a, double b) {
  check_arith("add", a);
  check_integral_scalar("add", a, b);
  return unary_op(kAddC, a, b);
}

Tensor mul(const Tensor& a, double b) {
  check_arith("mul", a);
  check_integral_scalar("mul", a, b);
  return unary_op(kMulC, a, b);
}

Tensor neg(const Tensor& x) {
  check_arith("neg", x);
  return unary_op(kNeg, x);
}

Tensor pow(const Tensor& x, double exponent) {
  check_math("pow", x);
  return exponent == 2.0 ? unary_op(kSquare, x) : unary_op(kPowC, x, exponent);
}
Tensor square(const Tensor& x) { return pow(x, 2.0); }

// Math functions take floating-point tensors only (an int64 or bool input is a named error).
Tensor exp(const Tensor& x) { return math_op(kExp, x); }
Tensor log(const Tensor& x) { return math_op(kLog, x); }
Tensor sqrt(const Tensor& x) { return math_op(kSqrt, x); }
Tensor relu(const Tensor& x) { return math_op(kRelu, x); }  // NaN -> NaN (gradient passes)

Tensor gelu(const Tensor& x, std::string_view approximate) {
  MMGRAD_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be ",
               "\"none\" (exact, x Phi(x)) or \"tanh\", got \"", approximate, "\"");
  return math_op(approximate == "tanh" ? kGeluT : kGelu, x);
}
Tensor sigmoid(const Tensor& x) { return math_op(kSigmoid, x); }
Tensor tanh(const Tensor& x) { return math_op(kTanh, x); }
Tensor silu(const Tensor& x) { return math_op(kSilu, x); }

Tensor abs(const Tensor& x) {
  check_arith("abs", x);
  return unary_op(kAbs, x);
}

Tensor sign(const Tensor& x) {  // no gradient (zero almost everywhere)
  check_arith("sign", x);
  return unary_kernel(UnaryOp::Sign, x);
}

// A NaN bound gives NaN everywhere (PyTorch fills the result with NaN); NaN in x stays NaN.
// Divergence: min > max is an error here, where PyTorch returns max everywhere.
Tensor clamp(const Tensor& x, double min, double max) {
  check_arith("clamp", x);
  MMGRAD_CHECK(!(min > max), "clamp: min (", min, ") is greater than max (", max, ")");
  MMGRAD_CHECK(is_floating(x.dtype()) || !(std::isnan(min) || std::isnan(max)),
               "clamp: a NaN bound (min ", min, ", max ", max, ") would make every element NaN, ",
               "which ", describe(x), " cannot hold");
  return unary_op(kClamp, x, min, max);
}

Tensor clamp_min(const Tensor& x, double min) { return clamp(x, min, INFINITY); }
Tensor clamp_max(const Tensor& x, double max) { return clamp(x, -INFINITY, max); }

// ---- where: y = cond ? a : b,  dy/da = [cond], dy/db = [not cond] ------------------------------
struct WhereBackward : Node {
  SavedTensor cond{this};
  const char* name() const override { return "where"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor zero = zeros_like(g);
    Tensor ga, gb;
    if (needs_grad(1)) ga = sum_to(where(cond.get(), g, zero), input_shapes[1]);
    if (needs_grad(2)) gb = sum_to(where(cond.get(), zero, g), input_shapes[2]);
    return {Tensor(), ga, gb};
  }
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
    backend(a.device())
        .where(broadcast_desc(cond, shape), broadcast_desc(a, shape), broadcast_desc(b, shape),
               out.desc());
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
