// The op list (see op_list.h): every case of every public op, grouped by the header that declares
// the op. Read a section to see how an op is exercised; add a line to add a case.
#include "op_list.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "mmgrad/nn/losses.h"
#include "mmgrad/ops/common.h"

namespace mmgrad::oplist {

// ---- inputs ------------------------------------------------------------------------------------

Arg f(const Shape& s, Domain d) { return Arg{Arg::Kind::Float, s, d}; }
Arg constant(const Shape& s, Domain d) { return Arg{Arg::Kind::Constant, s, d}; }
Arg index(const Shape& s, int64_t high) { return Arg{Arg::Kind::Index, s, Domain::Any, high}; }
Arg mask(const Shape& s, double p) { return Arg{Arg::Kind::Mask, s, Domain::Any, 0, p}; }
Arg value(const Shape& s, double v) { return Arg{Arg::Kind::Value, s, Domain::Any, 0, v}; }
Arg fixed(const Tensor& t) {
  Arg a{Arg::Kind::Fixed, t.shape()};
  a.fixed = t;
  return a;
}

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contiguous:
      return "contiguous";
    case Layout::Transposed:
      return "transposed";  // stored with the last two dims swapped, viewed back by a transpose
    case Layout::Permuted:
      return "permuted";  // stored with the dims rotated, viewed back by a permute
    case Layout::Stepped:
      return "stepped";  // every other element of a last dim twice as long (offset 1)
    case Layout::Expanded:
      return "expanded";  // dim 0 stored with size 1 and broadcast (stride 0)
  }
  return "?";
}

namespace {

// Can input shape s be viewed through layout l (and is the view not simply contiguous)?
bool layout_applies(Layout l, const Shape& s) {
  if (s.numel() == 0) return false;
  switch (l) {
    case Layout::Contiguous:
      return true;
    case Layout::Transposed:
      return s.size() >= 2 && s[s.size() - 1] > 1 && s[s.size() - 2] > 1;  // else contiguous
    case Layout::Permuted:
      return s.size() >= 3;
    case Layout::Stepped:
      return s.size() >= 1;
    case Layout::Expanded:
      return s.size() >= 1 && s[0] > 1;
  }
  return false;
}

// The shape the leaf is stored with so that view(leaf) has shape s.
Shape stored_shape(Layout l, const Shape& s) {
  Shape t = s;
  const int r = s.size();
  switch (l) {
    case Layout::Contiguous:
      break;
    case Layout::Transposed:
      std::swap(t[r - 1], t[r - 2]);
      break;
    case Layout::Permuted:  // t = (s1, s2, ..., s0)
      for (int i = 0; i < r; ++i) t[i] = s[(i + 1) % r];
      break;
    case Layout::Stepped:
      t[r - 1] = 2 * s.back();
      break;
    case Layout::Expanded:
      t[0] = 1;
      break;
  }
  return t;
}

Tensor layout_view(Layout l, const Tensor& x, const Shape& s) {
  switch (l) {
    case Layout::Contiguous:
      return x;
    case Layout::Transposed:
      return x.transpose(-1, -2);
    case Layout::Permuted: {  // stored dim i holds s[i + 1]: put the last one first
      Shape p;
      p.push_back(s.size() - 1);
      for (int i = 0; i + 1 < s.size(); ++i) p.push_back(i);
      return x.permute(p);
    }
    case Layout::Stepped:
      return x.slice(-1, 1, 2 * s.back(), 2);
    case Layout::Expanded:
      return x.expand(s);
  }
  return x;
}

// A stable seed from the case's name and the argument's position (FNV-1a).
uint64_t seed_of(const std::string& name, size_t arg) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return (h ^ (arg + 1)) * 1099511628211ull;
}

// float64 values of shape s from domain d.
Tensor draw(const Shape& s, Domain d, uint64_t seed) {
  Generator g(seed);
  const Shape flat{s.numel()};
  if (d == Domain::Ties) return Tensor::randint(-3, 4, flat, kInt64, &g).to(kFloat64).reshape(s);
  std::vector<double> v = Tensor::randn(flat, kFloat64, &g).to_vector<double>();
  for (double& x : v) {
    switch (d) {
      case Domain::Any:
      case Domain::Ties:
        break;
      case Domain::Wide:
        x *= 2;
        break;
      case Domain::Positive:
        x = std::abs(x) + 0.5;
        break;
      case Domain::AwayZero:
        x = (x < 0 ? -1 : 1) * (std::abs(x) + 0.2);
        break;
      case Domain::AwayHalf:
        for (double k : {-0.5, 0.0, 0.5})
          if (std::abs(x - k) < 0.05) x = k + (x < k ? -0.05 : 0.05);
        break;
    }
  }
  return Tensor::from_vector(v, flat, kFloat64).reshape(s);
}

std::string shapes_str(const std::vector<Arg>& args) {
  std::string s;
  for (const Arg& a : args) {
    if (!s.empty()) s += ' ';
    s += a.shape.str();
  }
  return s;
}

// ---- building the list -------------------------------------------------------------------------

struct Builder {
  std::vector<OpCase> cases;
  std::string group;

  // Adds c as written (contiguous inputs).
  void add(OpCase c) {
    c.group = group;
    c.name = c.op + (c.variant.empty() ? "" : " " + c.variant) + " " + shapes_str(c.args);
    if (c.view_arg >= 0) c.name += cat_str(" (input ", c.view_arg, " ", layout_name(c.layout), ")");
    cases.push_back(std::move(c));
  }
  // Adds c, then c with each listed input stored in each other layout that applies to its shape.
  void add_layouts(OpCase c, std::vector<int> inputs = {0}) {
    add(c);
    for (int i : inputs)
      for (Layout l : {Layout::Transposed, Layout::Permuted, Layout::Stepped, Layout::Expanded})
        if (layout_applies(l, c.args[static_cast<size_t>(i)].shape)) {
          OpCase v = c;
          v.layout = l;
          v.view_arg = i;
          v.bench.clear();  // benchmarks run the contiguous case
          add(std::move(v));
        }
  }

  // An elementwise op of one tensor: 0-d, 1-D, size-1, 3-D and empty shapes, and every layout of
  // a [3, 4] input (the contiguous one is benchmarked on 1M elements).
  void unary(const std::string& op, const std::string& variant, Domain d,
             std::function<Tensor(const Tensor&)> g, unsigned flags = 0) {
    OpFn fn = [g](const Inputs& x) { return g(x[0]); };
    for (Shape s : {Shape{5}, Shape{}, Shape{1, 3, 1}, Shape{2, 3, 4}, Shape{0, 3}})
      add({op, variant, {f(s, d)}, fn, flags});
    add_layouts({op, variant, {f({3, 4}, d)}, fn, flags, 1e-5, {f({1024, 1024}, d)}});
  }

  // An elementwise op of two tensors: broadcasting shape pairs (0-d, size-1, batch, empty), each
  // layout on either side, and an operand without gradient.
  void binary(const std::string& op, Domain da, Domain db,
              std::function<Tensor(const Tensor&, const Tensor&)> g, unsigned flags = 0) {
    OpFn fn = [g](const Inputs& x) { return g(x[0], x[1]); };
    const std::vector<std::pair<Shape, Shape>> pairs = {{{3, 4}, {3, 4}},
                                                        {{2, 1, 4}, {3, 1}},
                                                        {{}, {2, 3}},
                                                        {{2, 3}, {1}},
                                                        {{2, 3, 1}, {1, 1, 5}},
                                                        {{1, 1}, {1, 1}},
                                                        {{4, 1, 2, 1}, {3, 1, 1}},
                                                        {{0, 3}, {3}}};
    for (auto& [sa, sb] : pairs) add({op, "", {f(sa, da), f(sb, db)}, fn, flags});
    add_layouts({op,
                 "",
                 {f({3, 4}, da), f({4}, db)},
                 fn,
                 flags,
                 1e-5,
                 {f({1024, 1024}, da), f({1024, 1024}, db)}},
                {0});
    add_layouts({op, "", {f({3, 1}, da), f({3, 4}, db)}, fn, flags}, {1});
    add({op, "constant rhs", {f({2, 3}, da), constant({3}, db)}, fn, flags});
  }
};

Tensor ints(const std::vector<int64_t>& v, const Shape& s) {
  return Tensor::from_vector(v, Shape{static_cast<int64_t>(v.size())}).reshape(s);
}
Tensor bools(const std::vector<bool>& v, const Shape& s) {
  return Tensor::from_vector(v, Shape{static_cast<int64_t>(v.size())}).reshape(s);
}

CrossEntropyOptions ce(Reduction r, double smoothing = 0.0) {
  CrossEntropyOptions o;
  o.reduction = r;
  o.label_smoothing = smoothing;
  return o;
}

// ---- ops/elementwise.h -------------------------------------------------------------------------
void elementwise(Builder& L) {
  L.group = "elementwise";
  using D = Domain;
  using T = const Tensor&;
  L.unary("neg", "", D::Any, [](T x) { return neg(x); });
  L.unary("neg", "operator-", D::Any, [](T x) { return -x; });
  L.unary("exp", "", D::Any, [](T x) { return exp(x); });
  L.unary("log", "", D::Positive, [](T x) { return log(x); });
  L.unary("sqrt", "", D::Positive, [](T x) { return sqrt(x); });
  L.unary("abs", "", D::AwayZero, [](T x) { return abs(x); });
  L.unary("square", "", D::Any, [](T x) { return square(x); });
  L.unary("clamp", "-0.5 0.5", D::AwayHalf, [](T x) { return clamp(x, -0.5, 0.5); });
  L.unary("clamp_min", "0.5", D::AwayHalf, [](T x) { return clamp_min(x, 0.5); });
  L.unary("clamp_max", "-0.5", D::AwayHalf, [](T x) { return clamp_max(x, -0.5); });
  L.unary("relu", "", D::AwayZero, [](T x) { return relu(x); });
  L.unary("gelu", "", D::Any, [](T x) { return gelu(x); });
  L.unary("gelu", "approximate none", D::Any, [](T x) { return gelu(x, "none"); });
  L.unary("gelu", "approximate tanh", D::Any, [](T x) { return gelu(x, "tanh"); });
  L.unary("sigmoid", "", D::Any, [](T x) { return sigmoid(x); });
  L.unary("silu", "", D::Any, [](T x) { return silu(x); });
  L.unary("tanh", "", D::Any, [](T x) { return tanh(x); });
  L.unary("pow", "3", D::Any, [](T x) { return pow(x, 3.0); });
  L.unary("pow", "Tensor::pow 2", D::Any, [](T x) { return x.pow(2.0); });
  L.unary("pow", "0.5", D::Positive, [](T x) { return pow(x, 0.5); });
  L.unary("pow", "-1.5", D::Positive, [](T x) { return pow(x, -1.5); });
  L.unary("pow", "0 (times x)", D::Any, [](T x) { return pow(x, 0.0) * x; });
  L.unary("add", "scalar", D::Any, [](T x) { return add(x, 2.5); });
  L.unary("add", "scalar minus x", D::Any, [](T x) { return 2.5 - x; });
  L.unary("mul", "scalar", D::Any, [](T x) { return mul(x, -1.5); });
  L.unary("mul", "divided by scalar", D::Any, [](T x) { return x / 4.0; });
  L.unary("div", "scalar over x", D::AwayZero, [](T x) { return 2.0 / x; });

  L.binary("add", D::Any, D::Any, [](T a, T b) { return add(a, b); });
  L.binary("sub", D::Any, D::Any, [](T a, T b) { return sub(a, b); });
  L.binary("mul", D::Any, D::Any, [](T a, T b) { return mul(a, b); });
  L.binary("div", D::Any, D::AwayZero, [](T a, T b) { return div(a, b); });
  L.binary("pow", D::Positive, D::Any, [](T a, T b) { return pow(a, b); });
  L.binary("maximum", D::Any, D::Any, [](T a, T b) { return maximum(a, b); });
  L.binary("minimum", D::Any, D::Any, [](T a, T b) { return minimum(a, b); });
  // The same tensor on both sides (both gradients accumulate into one leaf).
  L.add({"mul", "self", {f({2, 3})}, [](const Inputs& x) { return x[0] * x[0]; }});
  L.add({"div", "self transposed", {f({3, 3}, D::AwayZero)}, [](const Inputs& x) {
           return x[0] / x[0].t();
         }});

  // where(cond, a, b) and masked_fill: the mask is an input (it moves to the GPU with the rest).
  Tensor cond = bools({true, false, true}, {3, 1});
  auto where3 = [](const Inputs& x) { return where(x[2], x[0], x[1]); };
  L.add_layouts({"where",
                 "",
                 {f({3, 4}), f({4}), fixed(cond)},
                 where3,
                 0,
                 1e-5,
                 {f({1024, 1024}), f({1024, 1024}), mask({1024, 1024})}});
  L.add({"where", "batch", {f({2, 1, 4}), f({3, 1}), fixed(cond)}, where3});
  L.add({"where", "scalar", {f({3, 4}), fixed(cond)}, [](const Inputs& x) {
           return where(x[1], x[0], 0.5);
         }});
  Tensor m4 = bools({false, true, false, true}, {4});
  L.add_layouts({"masked_fill", "", {f({3, 4}), fixed(m4)}, [](const Inputs& x) {
                   return masked_fill(x[0], x[1], -2.0);
                 }});
  L.add({"masked_fill", "Tensor::masked_fill 1e4", {f({2, 3, 4}), fixed(m4)}, [](const Inputs& x) {
           return x[0].masked_fill(x[1], 1e4);
         }});

  // No gradient: comparisons (small integers, so equal values occur), logic, sign.
  using Cmp = Tensor (*)(const Tensor&, const Tensor&);
  using CmpS = Tensor (*)(const Tensor&, double);
  const std::vector<std::pair<const char*, std::pair<Cmp, CmpS>>> cmps = {
      {"eq", {[](T a, T b) { return eq(a, b); }, [](T a, double b) { return eq(a, b); }}},
      {"ne", {[](T a, T b) { return ne(a, b); }, [](T a, double b) { return ne(a, b); }}},
      {"lt", {[](T a, T b) { return lt(a, b); }, [](T a, double b) { return lt(a, b); }}},
      {"le", {[](T a, T b) { return le(a, b); }, [](T a, double b) { return le(a, b); }}},
      {"gt", {[](T a, T b) { return gt(a, b); }, [](T a, double b) { return gt(a, b); }}},
      {"ge", {[](T a, T b) { return ge(a, b); }, [](T a, double b) { return ge(a, b); }}},
  };
  for (auto& [name, fns] : cmps) {
    Cmp g = fns.first;
    CmpS gs = fns.second;
    L.add_layouts({name,
                   "",
                   {f({3, 4}, D::Ties), f({4}, D::Ties)},
                   [g](const Inputs& x) { return g(x[0], x[1]); },
                   kNoGrad});
    L.add({name,
           "scalar",
           {f({2, 3}, D::Ties)},
           [gs](const Inputs& x) { return gs(x[0], 1.0); },
           kNoGrad});
  }
  L.add({"logical_and",
         "",
         {mask({3, 4}), mask({4})},
         [](const Inputs& x) { return logical_and(x[0], x[1]); },
         kNoGrad});
  L.add({"logical_or",
         "",
         {mask({2, 1, 4}), mask({3, 1})},
         [](const Inputs& x) { return logical_or(x[0], x[1]); },
         kNoGrad});
  L.add_layouts({"logical_not",
                 "",
                 {mask({3, 4})},
                 [](const Inputs& x) { return logical_not(x[0]); },
                 kNoGrad});
  L.add_layouts(
      {"sign", "", {f({3, 4}, D::Ties)}, [](const Inputs& x) { return sign(x[0]); }, kNoGrad});
}

// ---- ops/reduce.h and sum_to (ops/common.h) ----------------------------------------------------
void reductions(Builder& L) {
  L.group = "reduce";
  using T = const Tensor&;
  struct Red {
    const char* op;
    const char* variant;
    std::function<Tensor(const Tensor&)> g;
  };
  const std::vector<Red> reds = {
      {"sum", "all", [](T x) { return sum(x); }},
      {"sum", "Tensor::sum dim 0", [](T x) { return x.sum({0}); }},
      {"sum", "dims 1,-1 keepdim",
       [](T x) {
         return sum(x, {1, -1}, true);
       }},
      {"mean", "all", [](T x) { return mean(x); }},
      {"mean", "Tensor::mean dim -1", [](T x) { return x.mean({-1}); }},
      {"mean", "dims 0,2 keepdim",
       [](T x) {
         return mean(x, {0, 2}, true);
       }},
      {"max", "all", [](T x) { return max(x); }},
      {"max", "Tensor::max dim 1", [](T x) { return x.max(1); }},
      {"max", "dim -1 keepdim", [](T x) { return max(x, -1, true); }},
      {"min", "Tensor::min all", [](T x) { return x.min(); }},
      {"min", "dim 0 keepdim", [](T x) { return min(x, 0, true); }},
      {"var", "all", [](T x) { return var(x); }},
      {"var", "Tensor::var dim 1", [](T x) { return x.var({1}); }},
      {"var", "dims 0,2 correction 0 keepdim",
       [](T x) {
         return var(x, {0, 2}, 0, true);
       }},
      {"logsumexp", "dim 1", [](T x) { return logsumexp(x, 1); }},
      {"logsumexp", "dim -1 keepdim", [](T x) { return logsumexp(x, -1, true); }},
  };
  for (const Red& r : reds) {
    OpFn fn = [g = r.g](const Inputs& x) { return g(x[0]); };
    L.add_layouts({r.op, r.variant, {f({2, 3, 4})}, fn, 0, 1e-5, {f({256, 1024, 4})}});
    L.add({r.op, r.variant, {f({1, 3, 4})}, fn});
    L.add({r.op, r.variant, {f({2, 3, 1})}, fn});
  }
  L.add({"sum", "0-d", {f({})}, [](const Inputs& x) { return sum(x[0]); }});
  L.add({"sum", "empty", {f({0, 3})}, [](const Inputs& x) { return sum(x[0]); }});
  L.add({"sum", "empty dim 1", {f({2, 0})}, [](const Inputs& x) { return x[0].sum({1}); }});
  L.add({"max", "0-d", {f({})}, [](const Inputs& x) { return max(x[0]); }});
  // Empty inputs (PyTorch's values: mean NaN, var NaN, logsumexp -inf; docs/semantics.md).
  L.add({"mean", "empty", {f({0, 3})}, [](const Inputs& x) { return mean(x[0]); }});
  L.add({"mean", "empty dim 0 keepdim", {f({0, 3})}, [](const Inputs& x) {
           return mean(x[0], {0}, true);
         }});
  L.add({"var", "empty dim 0", {f({0, 3})}, [](const Inputs& x) { return var(x[0], Shape{0}); }});
  L.add({"logsumexp", "empty dim 1", {f({3, 0})}, [](const Inputs& x) {
           return logsumexp(x[0], 1);
         }});
  L.add({"max", "dim 1 of empty", {f({0, 3})}, [](const Inputs& x) { return max(x[0], 1); }});
  L.add({"min", "dim 0 of empty keepdim", {f({3, 0})}, [](const Inputs& x) {
           return min(x[0], 0, true);
         }});
  L.add({"mean", "1-D", {f({7})}, [](const Inputs& x) { return mean(x[0]); }});
  L.add({"logsumexp", "dim 0", {f({5, 3})}, [](const Inputs& x) { return logsumexp(x[0], 0); }});
  // sum_to (ops/common.h), the backward of broadcasting, is itself differentiable.
  L.add_layouts({"sum_to", "[3, 1]", {f({2, 3, 4})}, [](const Inputs& x) {
                   return sum_to(x[0], {3, 1});
                 }});
  // No gradient: the arg reductions.
  L.add_layouts({"argmax",
                 "dim 1",
                 {f({2, 3, 4})},
                 [](const Inputs& x) { return argmax(x[0], 1); },
                 kNoGrad});
  L.add({"argmax", "all", {f({3, 5})}, [](const Inputs& x) { return argmax(x[0]); }, kNoGrad});
  L.add({"argmax",
         "dim 1 of empty",
         {f({0, 3})},
         [](const Inputs& x) { return argmax(x[0], 1); },
         kNoGrad});
  L.add_layouts({"argmin",
                 "dim -1 keepdim",
                 {f({2, 3, 4})},
                 [](const Inputs& x) { return argmin(x[0], -1, true); },
                 kNoGrad});
}

// ---- ops/shape.h (and the view-like Tensor methods) --------------------------------------------
void shape_ops(Builder& L) {
  L.group = "shape";
  auto one = [&L](const char* op, const char* variant, Shape in,
                  std::function<Tensor(const Tensor&)> g) {
    L.add({op, variant, {f(in)}, [g](const Inputs& x) { return g(x[0]); }});
  };
  using T = const Tensor&;
  one("reshape", "Tensor::reshape [4, -1]", {2, 3, 4}, [](T x) { return x.reshape({4, -1}); });
  one("reshape", "of transposed (copies)", {2, 3, 4}, [](T x) {
    return reshape(x.transpose(0, 2), {12, 2});
  });
  one("reshape", "empty", {0, 3}, [](T x) { return reshape(x, {3, 0}); });
  one("view", "[6, 4]", {2, 3, 4}, [](T x) { return view(x, {6, 4}); });
  one("view", "of transposed (compatible)", {2, 3, 4}, [](T x) {
    return x.transpose(0, 1).view({3, 2, 2, 2});
  });
  one("flatten", "from 1", {2, 3, 4}, [](T x) { return flatten(x, 1); });
  one("flatten", "of permuted", {2, 3, 4}, [](T x) { return x.permute({2, 0, 1}).flatten(); });
  one("transpose", "0 -1", {2, 3, 4}, [](T x) { return transpose(x, 0, -1); });
  one("Tensor::t", "", {3, 5}, [](T x) { return x.t(); });
  one("permute", "1 2 0", {2, 3, 4}, [](T x) { return permute(x, {1, 2, 0}); });
  one("permute", "then slice, reshape, mul", {2, 3, 4}, [](T x) {
    return x.permute({2, 1, 0}).slice(0, 1, 4).reshape({-1}) * 3.0;
  });
  one("slice", "dim 1", {4, 6}, [](T x) { return x.slice(1, 1, 5); });
  one("slice", "step 3", {4, 7}, [](T x) { return slice(x, 1, 0, 7, 3); });
  one("slice", "negative", {5, 3}, [](T x) { return x.slice(0, -3, -1); });
  one("slice", "twice", {6, 4}, [](T x) { return x.slice(0, 1, 6, 2).slice(1, 1, 4, 2); });
  one("slice", "huge step", {4, 6}, [](T x) {
    return x.slice(1, 1, std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max());
  });
  one("slice", "bounds beyond int64 range clamp", {5, 3}, [](T x) {
    return slice(x, 0, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 2);
  });
  one("narrow", "dim 1", {3, 5}, [](T x) { return narrow(x, 1, 2, 3); });
  one("narrow", "negative start", {3, 5}, [](T x) { return narrow(x, 0, -2, 2); });
  one("narrow", "empty", {3, 5}, [](T x) { return narrow(x, 1, 5, 0); });
  one("select", "Tensor::select dim 1", {3, 4, 2}, [](T x) { return x.select(1, 2); });
  one("select", "negative", {3, 4}, [](T x) { return select(x, 0, -1); });
  one("select", "of transposed", {4, 3}, [](T x) { return x.t().select(1, 2); });
  one("Tensor::operator[]", "", {3, 4}, [](T x) { return x[1]; });
  one("expand", "Tensor::expand", {3, 1}, [](T x) { return x.expand({2, 3, 4}); });
  one("expand", "-1", {1, 4}, [](T x) { return expand(x, {3, -1}); });
  one("squeeze", "all", {1, 3, 1, 2}, [](T x) { return squeeze(x); });
  one("squeeze", "dim", {3, 1, 2}, [](T x) { return squeeze(x, 1); });
  one("unsqueeze", "Tensor::unsqueeze 1", {3, 2}, [](T x) { return x.unsqueeze(1); });
  one("unsqueeze", "last", {3, 2}, [](T x) { return unsqueeze(x, -1); });
  one("Tensor::contiguous", "of transposed", {3, 4}, [](T x) { return x.t().contiguous(); });
  one("Tensor::clone", "", {3, 4}, [](T x) { return x.clone(); });
}

// ---- ops/matmul.h ------------------------------------------------------------------------------
void matmul_ops(Builder& L) {
  L.group = "matmul";
  OpFn mm = [](const Inputs& x) { return matmul(x[0], x[1]); };
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{4}, {4}},                 // dot product
      {{3}, {3, 5}},              // vector @ matrix
      {{2, 3}, {3}},              // matrix @ vector
      {{1, 1}, {1, 1}},           // size-1
      {{1, 3}, {3, 1}},           // M = N = 1
      {{2, 3, 4}, {2, 4, 5}},     // batched
      {{2, 1, 3, 4}, {3, 4, 2}},  // broadcast batch dims
      {{2, 3, 4}, {4, 5}},        // batch @ shared matrix
      {{3, 4}, {2, 4, 2}},        // shared matrix @ batch
      {{4}, {2, 4, 3}},           // vector @ batch
      {{2, 3, 4}, {4}},           // batch @ vector
      {{0, 4}, {4, 3}},           // empty rows
      {{2, 0}, {0, 3}},           // empty inner dimension: zeros
  };
  // Matrices, each operand in each layout (transposed operands are read in place by the GEMM,
  // stepped ones copied, expanded batches broadcast). Benchmarked at 512^3.
  L.add_layouts({"matmul",
                 "",
                 {f({2, 3}), f({3, 4})},
                 mm,
                 kGemm,
                 1e-5,
                 {f({512, 512}), f({512, 512})},
                 3 * 2.0 * 512 * 512 * 512},
                {0, 1});
  for (auto& [sa, sb] : pairs) L.add({"matmul", "", {f(sa), f(sb)}, mm, kGemm});
  L.add({"matmul",
         "a^T b^T batched",
         {f({2, 3, 2}), f({2, 4, 3})},
         [](const Inputs& x) { return matmul(x[0].transpose(-1, -2), x[1].transpose(-1, -2)); },
         kGemm});
  L.add({"matmul",
         "expanded batch",
         {f({1, 2, 4}), f({3, 4, 2})},
         [](const Inputs& x) {
           return matmul(x[0].expand({3, 2, 4}), x[1]);
         },
         kGemm});
  L.add({"matmul",
         "permuted batch",
         {f({2, 3, 4}), f({3, 4, 2})},
         [](const Inputs& x) {
           return matmul(x[0].permute({1, 0, 2}), x[1]);
         },
         kGemm});
  L.add({"matmul",
         "Tensor::matmul same tensor",
         {f({3, 3})},
         [](const Inputs& x) { return x[0].matmul(x[0]); },
         kGemm});
  L.add({"matmul",
         "chain through relu",
         {f({2, 3}), f({3, 4}, Domain::AwayZero), f({4, 2})},
         [](const Inputs& x) { return matmul(relu(matmul(x[0], x[1])), x[2]); },
         kGemm});
}

// ---- ops/softmax.h -----------------------------------------------------------------------------
void softmax_ops(Builder& L) {
  L.group = "softmax";
  for (bool lg : {false, true}) {
    const char* op = lg ? "log_softmax" : "softmax";
    auto sm = [lg](int64_t dim) {
      return
          [lg, dim](const Inputs& x) { return lg ? log_softmax(x[0], dim) : softmax(x[0], dim); };
    };
    const std::vector<std::pair<Shape, int64_t>> cases = {
        {{5}, 0},          {{2, 3, 4}, 0}, {{2, 3, 4}, -1}, {{1, 3, 1}, 1}, {{3, 1}, 1},
        {{2, 1, 3, 2}, 2}, {{}, 0},        {{0, 3}, 1},     {{2, 0}, 1}};
    for (auto& [s, dim] : cases) L.add({op, cat_str("dim ", dim), {f(s, Domain::Wide)}, sm(dim)});
    L.add_layouts({op,
                   "dim 1",
                   {f({2, 3, 4}, Domain::Wide)},
                   sm(1),
                   0,
                   1e-5,
                   {f({256, 1000}, Domain::Wide)}});
    L.add_layouts({op, "dim 0", {f({3, 4}, Domain::Wide)}, sm(0)});
    // A later op sends back a non-contiguous (transposed, then broadcast) gradient.
    L.add(
        {op, "non-contiguous upstream gradient", {f({3, 5}, Domain::Wide)}, [lg](const Inputs& x) {
           Tensor s = lg ? log_softmax(x[0], 1) : softmax(x[0], 1);
           return s.t().sum(Shape{1}, true).expand({5, 3}) * s.t();
         }});
  }
}

// ---- ops/loss.h --------------------------------------------------------------------------------
void losses(Builder& L) {
  L.group = "loss";
  auto ce_fn = [](CrossEntropyOptions o) {
    return [o](const Inputs& x) { return cross_entropy(x[0], x[1], o); };
  };
  using R = Reduction;
  // Reductions, label smoothing, ignored rows (-100), one row, one class; logits in each layout.
  L.add({"cross_entropy", "mean", {f({1, 3}), index({1}, 3)}, ce_fn(ce(R::Mean))});
  L.add({"cross_entropy",
         "sum smoothing 0.15 one class",
         {f({4, 1}), fixed(ints({0, -100, 0, 0}, {4}))},
         ce_fn(ce(R::Sum, 0.15))});
  L.add_layouts({"cross_entropy",
                 "none with ignored row",
                 {f({3, 4}), fixed(ints({-100, 2, 1}, {3}))},
                 ce_fn(ce(R::None))});
  L.add_layouts({"cross_entropy",
                 "mean smoothing 0.15 with ignored row",
                 {f({4, 5}), fixed(ints({3, -100, 0, 4}, {4}))},
                 ce_fn(ce(R::Mean, 0.15)),
                 0,
                 1e-5,
                 {f({256, 1000}), index({256}, 1000)}});
  L.add({"cross_entropy", "sum", {f({2, 3}), index({2}, 3)}, ce_fn(ce(R::Sum))});
  L.add({"cross_entropy",
         "[C] with 0-d target smoothing 0.1",
         {f({5}), fixed(ints({3}, {}))},
         ce_fn(ce(R::Mean, 0.1))});
  L.add({"cross_entropy",
         "[N, C, d1, d2] none smoothing 0.2",
         {f({2, 3, 2, 1}), fixed(ints({0, 2, -100, 1}, {2, 2, 1}))},
         ce_fn(ce(R::None, 0.2))});
  for (R r : {R::Mean, R::Sum, R::None}) {
    const char* rn = r == R::Mean ? "mean" : r == R::Sum ? "sum" : "none";
    L.add({"mse_loss",
           cat_str(rn, ", target permuted"),
           {f({3, 1, 4}), f({4, 1, 3})},
           [r](const Inputs& x) {
             return mse_loss(x[0], x[1].permute({2, 1, 0}), r);
           }});
  }
  L.add_layouts({"mse_loss", "mean", {f({5, 3}), f({5, 3})}, [](const Inputs& x) {
                   return mse_loss(x[0], x[1]);
                 }});
  // Empty inputs: mean NaN, sum 0, none empty (PyTorch's values).
  for (R r : {R::Mean, R::Sum, R::None}) {
    const char* rn = r == R::Mean ? "mean" : r == R::Sum ? "sum" : "none";
    L.add({"mse_loss", cat_str(rn, " empty"), {f({0, 3}), f({0, 3})}, [r](const Inputs& x) {
             return mse_loss(x[0], x[1], r);
           }});
    L.add({"cross_entropy",
           cat_str(rn, " empty batch"),
           {f({0, 4}), fixed(Tensor::zeros({0}, kInt64))},
           ce_fn(ce(r))});
  }
}

// ---- ops/norm.h --------------------------------------------------------------------------------
void norms(Builder& L) {
  L.group = "norm";
  for (int64_t dim : {0, 1, 2}) {
    L.add({"normalize", cat_str("dim ", dim), {f({3, 1, 4})}, [dim](const Inputs& x) {
             return normalize(x[0], dim);
           }});
  }
  L.add_layouts(
      {"normalize", "dim -1", {f({3, 1, 4})}, [](const Inputs& x) { return normalize(x[0], -1); }});
  // Broadcasting [3, 1, 4] against [2, 4]; the second stored transposed.
  L.add({"cosine_similarity", "dim -1 broadcast", {f({3, 1, 4}), f({4, 2})}, [](const Inputs& x) {
           return cosine_similarity(x[0], x[1].t(), -1);
         }});
  L.add({"cosine_similarity", "dim 1 broadcast", {f({3, 1, 4}), f({4, 2})}, [](const Inputs& x) {
           return cosine_similarity(x[0].transpose(1, 2), x[1], 1);
         }});
  L.add({"cosine_similarity", "dim 1", {f({4, 6}), f({1, 6})}, [](const Inputs& x) {
           return cosine_similarity(x[0], x[1], 1);
         }});
  // layer_norm over the trailing dims, with and without weight / bias.
  L.add_layouts({"layer_norm",
                 "[4] weight bias",
                 {f({2, 3, 4}), f({4}), f({4})},
                 // normalized_shape is the weight's shape, so the benchmark size works too
                 [](const Inputs& x) { return layer_norm(x[0], x[1].shape(), x[1], x[2]); },
                 0,
                 1e-5,
                 {f({64, 1024}), f({1024}), f({1024})}});
  L.add({"layer_norm", "[3, 4] weight", {f({2, 4, 3}), f({3, 4})}, [](const Inputs& x) {
           return layer_norm(x[0].transpose(1, 2), {3, 4}, x[1]);
         }});
  L.add({"layer_norm", "[1, 5] bias", {f({1, 1, 5}), f({1, 5})}, [](const Inputs& x) {
           return layer_norm(x[0], {1, 5}, {}, x[1]);
         }});
  L.add({"layer_norm", "empty batch", {f({0, 4}), f({4}), f({4})}, [](const Inputs& x) {
           return layer_norm(x[0], {4}, x[1], x[2]);
         }});
  L.add({"normalize", "empty batch", {f({0, 3})}, [](const Inputs& x) {
           return normalize(x[0], 1);
         }});
  L.add({"cosine_similarity", "empty batch", {f({0, 3}), f({0, 3})}, [](const Inputs& x) {
           return cosine_similarity(x[0], x[1], 1);
         }});
  L.add({"layer_norm", "[6] no affine", {f({6})}, [](const Inputs& x) {
           return layer_norm(x[0], {6});
         }});
  // batch_norm in training (the gradient flows through the batch statistics; the running
  // statistics are updated in place) and in eval (the running statistics are constants).
  L.add({"batch_norm",
         "training, permuted input",
         {f({2, 3, 2, 4}), f({3}), f({3}), constant({3}), constant({3}, Domain::Positive)},
         [](const Inputs& x) {
           return batch_norm(x[0].permute({3, 1, 0, 2}), x[3], x[4], x[1], x[2], true);
         }});
  L.add({"batch_norm", "training [N, 1] weight only", {f({5, 1}), f({1})}, [](const Inputs& x) {
           return batch_norm(x[0], {}, {}, x[1], {}, true);
         }});
  L.add_layouts({"batch_norm",
                 "eval",
                 {f({2, 3, 2}), f({3}), f({3}), constant({3}), constant({3}, Domain::Positive)},
                 [](const Inputs& x) { return batch_norm(x[0], x[3], x[4], x[1], x[2], false); }});
  L.add({"batch_norm",
         "training no running stats",
         {f({6, 3, 2}), f({3}), f({3})},
         [](const Inputs& x) { return batch_norm(x[0], {}, {}, x[1], x[2], true); },
         0,
         1e-5,
         {f({64, 64, 16, 16}), f({64}), f({64})}});
  // group_norm: 2 groups of 2 channels in every layout; one group (layer norm over [C, ...]
  // with per-channel affine); C groups (instance norm); no spatial dims; odd 5-D sizes; an empty
  // batch. The benchmark is a diffusion U-Net's: 32 groups of 2 channels.
  L.add_layouts({"group_norm",
                 "2 groups weight bias",
                 {f({2, 4, 3}), f({4}), f({4})},
                 [](const Inputs& x) { return group_norm(x[0], 2, x[1], x[2]); },
                 0,
                 1e-5,
                 {f({16, 64, 32, 32}), f({64}), f({64})}});
  L.add({"group_norm", "1 group", {f({2, 3, 2, 2}), f({3}), f({3})}, [](const Inputs& x) {
           return group_norm(x[0], 1, x[1], x[2]);
         }});
  L.add({"group_norm", "groups = C no affine", {f({3, 4, 5})}, [](const Inputs& x) {
           return group_norm(x[0], 4);
         }});
  L.add({"group_norm", "[N, C] weight only eps 0.1", {f({3, 6}), f({6})}, [](const Inputs& x) {
           return group_norm(x[0], 3, x[1], {}, 0.1);
         }});
  L.add({"group_norm",
         "5-D bias only, channels-last",
         {f({1, 3, 1, 2, 6}), f({6})},
         [](const Inputs& x) {
           return group_norm(x[0].permute({0, 4, 1, 2, 3}), 3, {}, x[1]);
         }});
  L.add({"group_norm", "empty batch", {f({0, 4, 3}), f({4}), f({4})}, [](const Inputs& x) {
           return group_norm(x[0], 2, x[1], x[2]);
         }});
}

// ---- ops/dropout.h -----------------------------------------------------------------------------
void dropouts(Builder& L) {
  L.group = "dropout";
  // A fresh generator on every call: the same mask each evaluation (gradcheck calls many times).
  // Uniform samples are bit-identical on the CPU and the GPU, and the float32 and float64 masks
  // come from the same Philox counters.
  L.add_layouts({"dropout",
                 "p 0.4 training",
                 {f({3, 1, 4})},
                 [](const Inputs& x) {
                   Generator g(9);
                   return dropout(x[0], 0.4, true, &g);
                 },
                 0,
                 1e-5,
                 {f({1024, 1024})}});
  L.add(
      {"dropout", "eval", {f({2, 3})}, [](const Inputs& x) { return dropout(x[0], 0.5, false); }});
}

// ---- ops/index.h -------------------------------------------------------------------------------
void indexing(Builder& L) {
  L.group = "index";
  // cat: three pieces that differ along dim (the last of size 1, without gradient); the first is
  // stored with dims 0 and 1 swapped.
  for (int64_t dim : {0, 1, 2, -1}) {
    const int d = dim < 0 ? 2 : static_cast<int>(dim);
    Shape s0{2, 3, 2}, s1 = s0, s2 = s0;
    s1[d] = 3;
    s2[d] = 1;
    L.add({"cat",
           cat_str("dim ", dim),
           {f({s0[1], s0[0], s0[2]}), f(s1), constant(s2)},
           [dim](const Inputs& x) {
             return cat({x[0].transpose(0, 1), x[1], x[2]}, dim).square();
           }});
  }
  L.add({"cat",
         "with an empty piece",
         {f({2, 3}), f({0, 3})},
         [](const Inputs& x) {
           return cat({x[0], x[1]}, 0);
         },
         0,
         1e-5,
         {f({512, 1024}), f({512, 1024})}});
  for (int64_t dim : {0, 1, 2, -1}) {
    L.add(
        {"stack", cat_str("dim ", dim), {f({3, 2}), f({2, 3}), f({2, 3})}, [dim](const Inputs& x) {
           return stack({x[0].t(), x[1], x[2] * x[1]}, dim);
         }});
  }
  // index_select with repeated indices (5 picks from at most 4), input stored transposed.
  const Shape s{3, 2, 4};
  for (int64_t dim : {0, 1, 2}) {
    L.add_layouts(
        {"index_select", cat_str("dim ", dim), {f(s), index({5}, s[dim])}, [dim](const Inputs& x) {
           return index_select(x[0], dim, x[1]);
         }});
  }
  // gather: index longer than x along dim (repeats), smaller outside it.
  for (int64_t dim : {0, 1, 2}) {
    Shape is = s;
    is[dim] = s[dim] + 1;
    L.add_layouts(
        {"gather", cat_str("dim ", dim), {f(s), index(is, s[dim])}, [dim](const Inputs& x) {
           return gather(x[0], dim, x[1]);
         }});
    is[(dim + 1) % 3] = 1;
    L.add({"gather",
           cat_str("dim ", dim, " smaller index"),
           {f(s), index(is, s[dim])},
           [dim](const Inputs& x) { return gather(x[0], dim, x[1]); }});
  }
  // scatter_add: src larger than index (its extra part gets no gradient), stored transposed.
  for (int64_t dim : {0, 1, 2}) {
    for (bool smaller : {false, true}) {
      Shape is = s;
      is[dim] = s[dim] + 1;
      if (smaller) is[(dim + 2) % 3] = 1;
      Shape ss = is;
      ss[(dim + 1) % 3] += 1;
      L.add({"scatter_add",
             cat_str("dim ", dim, smaller ? " smaller index" : ""),
             {f(s), index(is, s[dim]), f({ss[2], ss[1], ss[0]})},
             [dim](const Inputs& x) {
               return scatter_add(x[0], dim, x[1], x[2].transpose(0, 2)).square();
             }});
    }
  }
  // embedding: batch dims, repeats, a weight stored transposed; with a padding_idx the op is
  // deliberately not the derivative of its forward for that row, so these indices avoid it.
  L.add({"embedding",
         "",
         {f({3, 5}), index({2, 3, 2}, 5)},
         [](const Inputs& x) { return embedding(x[0].t(), x[1]); },
         0,
         1e-5,
         {f({256, 10000}), index({64, 128}, 10000)}});
  L.add({"embedding",
         "padding_idx 2",
         {f({3, 5}), fixed(ints({0, 4, 1, 3, 4, 4, 0, 1}, {2, 2, 2}))},
         [](const Inputs& x) { return embedding(x[0].t(), x[1], 2); }});
  L.add({"one_hot",
         "5 classes",
         {index({2, 3}, 5)},
         [](const Inputs& x) { return one_hot(x[0], 5); },
         kNoGrad});
  L.add({"one_hot",
         "inferred classes float64",
         {index({7}, 4)},
         [](const Inputs& x) { return one_hot(x[0], -1, kFloat64); },
         kNoGrad});
}

// ---- ops/sort.h (no gradient; small integers so that the stable order of ties is checked) ------
void sorting(Builder& L) {
  L.group = "sort";
  L.add_layouts({"sort",
                 "values descending",
                 {f({4, 9}, Domain::Ties)},
                 [](const Inputs& x) { return sort(x[0], 1, true).values; },
                 kNoGrad,
                 1e-5,
                 {f({256, 1024})}});
  L.add_layouts({"sort",
                 "indices dim 0",
                 {f({6, 5}, Domain::Ties)},
                 [](const Inputs& x) { return sort(x[0], 0).indices; },
                 kNoGrad});
  L.add({"topk",
         "values",
         {f({3, 12}, Domain::Ties)},
         [](const Inputs& x) { return topk(x[0], 4).values; },
         kNoGrad});
  L.add_layouts({"topk",
                 "smallest indices dim 0",
                 {f({7, 4}, Domain::Ties)},
                 [](const Inputs& x) { return topk(x[0], 3, 0, false).indices; },
                 kNoGrad});
}

// ---- ops/conv.h --------------------------------------------------------------------------------
void convs(Builder& L) {
  L.group = "conv";
  struct ConvCase {
    Shape x, w;
    Pair2 stride, pad, dil;
    bool bias;
    const char* what;
  };
  const std::vector<ConvCase> cases = {
      {{2, 3, 5, 6}, {4, 3, 3, 2}, {2, 1}, {1, 0}, {1, 2}, true, "stride, padding, dilation"},
      {{1, 2, 7, 5}, {3, 2, 3, 3}, 2, 1, 2, true, "stride 2 padding 1 dilation 2"},
      {{2, 3, 4, 4}, {5, 3, 1, 1}, 1, 0, 1, true, "1x1 (no im2col)"},
      {{2, 3, 4, 4}, {2, 3, 1, 1}, 1, 0, 3, false, "1x1 dilation 3"},
      {{2, 2, 5, 5}, {3, 2, 1, 1}, 2, 1, 1, true, "1x1 stride 2 padding 1"},
      {{1, 1, 1, 6}, {2, 1, 1, 3}, {1, 2}, 0, 1, true, "height 1"},
      {{3, 1, 4, 3}, {1, 1, 2, 2}, 1, {0, 1}, 1, false, "one channel"},
      {{1, 2, 3, 3}, {2, 2, 3, 3}, 3, 2, 1, true, "heavy padding, big stride"},
      {{1, 2, 3, 1}, {2, 2, 3, 3}, 1, 1, 1, true, "width 1"},
      {{1, 1, 4, 2}, {1, 1, 2, 3}, {1, 3}, {0, 2}, {1, 2}, true, "dilated kernel past the edge"},
  };
  for (const ConvCase& c : cases) {
    std::vector<Arg> args = {f(c.x), f(c.w)};
    if (c.bias) args.push_back(f({c.w[0]}));
    L.add({"conv2d", c.what, args,
           [c](const Inputs& x) {
             return conv2d(x[0], x[1], x.size() > 2 ? x[2] : Tensor(), c.stride, c.pad, c.dil);
           },
           kGemm});
  }
  // The benchmark: (64, 64, 32, 32), 64 3x3 filters, padding 1 (forward 2 N Cout OH OW Cin 9
  // flops; the backward twice that again: input and weight gradients).
  L.add_layouts({"conv2d",
                 "3x3 padding 1",
                 {f({2, 2, 4, 4}), f({3, 2, 3, 3}), f({3})},
                 [](const Inputs& x) { return conv2d(x[0], x[1], x[2], 1, 1); },
                 kGemm,
                 1e-5,
                 {f({64, 64, 32, 32}), f({64, 64, 3, 3}), f({64})},
                 3.0 * 2 * 64 * 64 * 32 * 32 * 64 * 9},
                {0, 1});
  L.add({"conv2d",
         "channels-last input, transposed weight",
         {f({2, 4, 5, 3}), f({3, 2, 3, 2}), f({2})},
         [](const Inputs& x) {
           return conv2d(x[0].permute({0, 3, 1, 2}), x[1].transpose(0, 1), x[2], 1, {1, 0}, {2, 1});
         },
         kGemm});
  L.add({"conv2d",
         "unbatched",
         {f({2, 4, 3}), f({3, 2, 2, 2})},
         [](const Inputs& x) { return conv2d(x[0], x[1], {}, 1, 1); },
         kGemm});
  for (int which = 0; which < 3; ++which) {
    std::vector<Arg> args = {constant({2, 2, 4, 4}), constant({3, 2, 3, 3}), constant({3})};
    args[static_cast<size_t>(which)].kind = Arg::Kind::Float;
    L.add({"conv2d", cat_str("only input ", which, " requires grad"), args,
           [](const Inputs& x) { return conv2d(x[0], x[1], x[2], 2, 1); }, kGemm});
  }
  L.add({"conv2d",
         "transposed output",
         {f({2, 2, 4, 4}), f({3, 2, 3, 3})},
         [](const Inputs& x) { return conv2d(x[0], x[1], {}, 1, 1).transpose(1, 3); },
         kGemm});
  L.add({"conv2d",
         "empty batch",
         {f({0, 2, 4, 4}), f({3, 2, 3, 3})},
         [](const Inputs& x) { return conv2d(x[0], x[1], {}, 1, 1); },
         kGemm});

  // Pooling: overlap, padding, size-1 dims; channels-last storage; unbatched input.
  struct PoolCase {
    Shape x;
    Pair2 k, s, p;
  };
  const std::vector<PoolCase> pools = {{{2, 2, 5, 6}, 3, 2, 1},
                                       {{1, 3, 4, 4}, 2, 1, 1},
                                       {{2, 1, 4, 5}, {2, 3}, 0, 0},
                                       {{1, 2, 1, 5}, {1, 3}, {1, 2}, {0, 1}}};
  for (bool is_max : {true, false}) {
    const char* op = is_max ? "max_pool2d" : "avg_pool2d";
    for (const PoolCase& c : pools) {
      L.add({op, cat_str("kernel ", c.k.h, "x", c.k.w), {f(c.x)}, [c, is_max](const Inputs& x) {
               return is_max ? max_pool2d(x[0], c.k, c.s, c.p) : avg_pool2d(x[0], c.k, c.s, c.p);
             }});
    }
    L.add({op,
           "2x2 of [64, 64, 32, 32]",
           {f({1, 1, 2, 2})},
           [is_max](const Inputs& x) { return is_max ? max_pool2d(x[0], 2) : avg_pool2d(x[0], 2); },
           0,
           1e-5,
           {f({64, 64, 32, 32})}});
  }
  L.add({"max_pool2d", "channels-last", {f({2, 5, 4, 3})}, [](const Inputs& x) {
           return max_pool2d(x[0].permute({0, 3, 1, 2}), 2, 1, 1);
         }});
  L.add({"avg_pool2d", "channels-last", {f({2, 5, 4, 3})}, [](const Inputs& x) {
           return avg_pool2d(x[0].permute({0, 3, 1, 2}), {3, 2}, {1, 2}, {1, 0});
         }});
  L.add({"max_pool2d", "unbatched", {f({3, 4, 5})}, [](const Inputs& x) {
           return max_pool2d(x[0], 2, 1);
         }});
  L.add({"avg_pool2d", "unbatched transposed", {f({3, 4, 5})}, [](const Inputs& x) {
           return avg_pool2d(x[0].transpose(1, 2), 2, 1, 1);
         }});
  for (auto [shape, out] : std::vector<std::pair<Shape, Pair2>>{
           {{2, 2, 5, 7}, {3, 4}}, {{1, 1, 3, 2}, {4, 5}}, {{2, 3, 4, 4}, 1}}) {
    L.add({"adaptive_avg_pool2d",
           cat_str("to ", out.h, "x", out.w),
           {f(shape)},
           [out](const Inputs& x) { return adaptive_avg_pool2d(x[0], out); }});
  }
  L.add({"adaptive_avg_pool2d",
         "channels-last to 2x3",
         {f({2, 5, 4, 3})},
         [](const Inputs& x) {
           return adaptive_avg_pool2d(x[0].permute({0, 3, 1, 2}), {2, 3});
         },
         0,
         1e-5});
}

// ---- ops/conv3d.h (composed from the 2-D ops: these cases check the composition) --------------
void convs3d(Builder& L) {
  L.group = "conv3d";
  struct Conv3dCase {
    Shape x, w;
    Triple3 stride, pad, dil;
    bool bias;
    const char* what;
  };
  const std::vector<Conv3dCase> cases = {
      {{2, 2, 4, 4, 3}, {3, 2, 3, 3, 2}, 1, 1, 1, true, "3x3x2 padding 1"},
      {{1, 2, 5, 4, 5},
       {2, 2, 2, 3, 3},
       {2, 1, 2},
       {1, 0, 1},
       {2, 1, 1},
       true,
       "depth stride 2 padding 1 dilation 2"},
      {{2, 3, 3, 3, 3}, {2, 3, 1, 1, 1}, 1, 0, 1, false, "1x1x1"},
      {{1, 1, 1, 3, 4}, {2, 1, 1, 2, 2}, 1, {0, 1, 0}, 1, true, "one frame"},
      {{1, 2, 3, 2, 2}, {2, 2, 3, 3, 3}, 3, 2, 1, true, "heavy padding, big stride"},
  };
  for (const Conv3dCase& c : cases) {
    std::vector<Arg> args = {f(c.x), f(c.w)};
    if (c.bias) args.push_back(f({c.w[0]}));
    L.add({"conv3d", c.what, args,
           [c](const Inputs& x) {
             return conv3d(x[0], x[1], x.size() > 2 ? x[2] : Tensor(), c.stride, c.pad, c.dil);
           },
           kGemm});
  }
  // The benchmark: a lesson-sized video layer, (32, 1, 8, 16, 16) -> 16 channels, 3x3x3,
  // padding 1 (forward 2 N Cout OD OH OW Cin 27 flops; backward about twice that).
  L.add_layouts({"conv3d",
                 "3x3x3 padding 1",
                 {f({2, 2, 3, 3, 3}), f({2, 2, 3, 3, 3}), f({2})},
                 [](const Inputs& x) { return conv3d(x[0], x[1], x[2], 1, 1); },
                 kGemm,
                 1e-5,
                 {f({32, 1, 8, 16, 16}), f({16, 1, 3, 3, 3}), f({16})},
                 3.0 * 2 * 32 * 16 * 8 * 16 * 16 * 1 * 27},
                {0, 1});
  L.add({"conv3d",
         "unbatched",
         {f({2, 3, 3, 2}), f({2, 2, 2, 2, 2})},
         [](const Inputs& x) {
           return conv3d(x[0], x[1], {}, 1, {0, 1, 0});
         },
         kGemm});
  L.add({"conv3d",
         "empty batch",
         {f({0, 2, 3, 3, 3}), f({2, 2, 2, 2, 2})},
         [](const Inputs& x) { return conv3d(x[0], x[1], {}, 1, 1); },
         kGemm});
  for (int which = 0; which < 3; ++which) {
    std::vector<Arg> args = {constant({1, 2, 3, 3, 3}), constant({2, 2, 2, 2, 2}), constant({2})};
    args[static_cast<size_t>(which)].kind = Arg::Kind::Float;
    L.add({"conv3d", cat_str("only input ", which, " requires grad"), args,
           [](const Inputs& x) {
             return conv3d(x[0], x[1], x[2], {2, 1, 1}, 1);
           },
           kGemm});
  }

  // Pooling: overlap, padding in every axis, size-1 axes, a strided view, unbatched input.
  struct Pool3dCase {
    Shape x;
    Triple3 k, s, p;
  };
  const std::vector<Pool3dCase> pools = {{{2, 2, 4, 5, 4}, 3, 2, 1},
                                         {{1, 3, 3, 4, 4}, 2, 1, 1},
                                         {{2, 1, 4, 4, 5}, {2, 2, 3}, 0, 0},
                                         {{1, 2, 1, 3, 5}, {1, 3, 3}, {1, 1, 2}, {0, 1, 1}}};
  for (const Pool3dCase& c : pools)
    L.add({"max_pool3d",
           cat_str("kernel ", c.k.d, "x", c.k.h, "x", c.k.w),
           {f(c.x)},
           [c](const Inputs& x) { return max_pool3d(x[0], c.k, c.s, c.p); }});
  L.add_layouts({"max_pool3d",
                 "2x2x2 of [32, 16, 8, 16, 16]",
                 {f({2, 2, 2, 4, 4})},
                 [](const Inputs& x) { return max_pool3d(x[0], 2); },
                 0,
                 1e-5,
                 {f({32, 16, 8, 16, 16})}});
  L.add({"max_pool3d", "unbatched", {f({2, 3, 4, 3})}, [](const Inputs& x) {
           return max_pool3d(x[0], {2, 2, 1}, 1);
         }});
  for (auto [shape, out] : std::vector<std::pair<Shape, Triple3>>{
           {{2, 2, 5, 4, 7}, {2, 3, 4}}, {{1, 1, 2, 3, 2}, {3, 4, 5}}, {{2, 3, 3, 4, 4}, 1}}) {
    L.add({"adaptive_avg_pool3d",
           cat_str("to ", out.d, "x", out.h, "x", out.w),
           {f(shape)},
           [out](const Inputs& x) { return adaptive_avg_pool3d(x[0], out); }});
  }
  L.add_layouts({"adaptive_avg_pool3d", "to 1x2x2", {f({2, 2, 3, 4, 4})}, [](const Inputs& x) {
                   return adaptive_avg_pool3d(x[0], {1, 2, 2});
                 }});
  L.add({"adaptive_avg_pool3d", "unbatched to 2x1x3", {f({2, 4, 3, 5})}, [](const Inputs& x) {
           return adaptive_avg_pool3d(x[0], {2, 1, 3});
         }});
}

// ---- ops/interpolate.h -------------------------------------------------------------------------
void interpolation(Builder& L) {
  L.group = "interpolate";
  auto interp = [](InterpolateOptions o) {
    return [o](const Inputs& x) { return interpolate(x[0], o); };
  };
  using O = InterpolateOptions;
  // Scale 2 in every layout; bilinear (the costlier mode) is benchmarked at a U-Net decoder's
  // size (bench_all --op interpolate times the first case with benchmark inputs).
  L.add_layouts({"interpolate",
                 "bilinear scale 2",
                 {f({2, 3, 4, 5})},
                 interp(O{.scale_factor = {2.0}, .mode = "bilinear"}),
                 0,
                 1e-5,
                 {f({16, 64, 32, 32})}});
  L.add_layouts(
      {"interpolate", "nearest scale 2", {f({2, 3, 4, 5})}, interp(O{.scale_factor = {2.0}})});
  // Non-integer sizes up and down, 1 / scale_factor against in / out, align_corners, size 1.
  const std::vector<std::pair<const char*, O>> cases = {
      {"nearest size 7x3", O{.size = {7, 3}}},
      {"nearest scale 1.5", O{.scale_factor = {1.5}}},
      {"nearest scale 1.5 recomputed", O{.scale_factor = {1.5}, .recompute_scale_factor = true}},
      {"nearest-exact size 7x3", O{.size = {7, 3}, .mode = "nearest-exact"}},
      {"bilinear size 7x3", O{.size = {7, 3}, .mode = "bilinear"}},
      {"bilinear scale 1.7x0.5", O{.scale_factor = {1.7, 0.5}, .mode = "bilinear"}},
      {"bilinear align_corners size 7x3",
       O{.size = {7, 3}, .mode = "bilinear", .align_corners = true}},
      {"bilinear align_corners size 1x2",
       O{.size = {1, 2}, .mode = "bilinear", .align_corners = true}},
      {"bilinear size 5x1", O{.size = {5, 1}, .mode = "bilinear"}},
  };
  for (const auto& [what, o] : cases) L.add({"interpolate", what, {f({2, 2, 5, 4})}, interp(o)});
  L.add({"interpolate", "linear size 9", {f({2, 3, 5})}, interp(O{.size = {9}, .mode = "linear"})});
  L.add({"interpolate",
         "linear align_corners scale 2.5",
         {f({1, 2, 3})},
         interp(O{.scale_factor = {2.5}, .mode = "linear", .align_corners = true})});
  L.add({"interpolate", "nearest 1-D size 2", {f({1, 2, 5})}, interp(O{.size = {2}})});
  L.add({"interpolate",
         "trilinear scale 2x1x1.5",
         {f({1, 2, 2, 3, 2})},
         interp(O{.scale_factor = {2.0, 1.0, 1.5}, .mode = "trilinear"})});
  L.add({"interpolate",
         "nearest 3-D size 3x2x5",
         {f({2, 1, 2, 3, 2})},
         interp(O{.size = {3, 2, 5}})});
  L.add({"interpolate",
         "bilinear same size",
         {f({1, 2, 3, 4})},
         interp(O{.size = {3, 4}, .mode = "bilinear"})});
  L.add({"interpolate", "bilinear channels-last", {f({2, 3, 4, 3})}, [](const Inputs& x) {
           return interpolate(x[0].permute({0, 3, 1, 2}),
                              {.scale_factor = {2.0}, .mode = "bilinear"});
         }});
  L.add({"interpolate",
         "bilinear empty batch",
         {f({0, 2, 3, 3})},
         interp(O{.scale_factor = {2.0}, .mode = "bilinear"})});
}

// ---- ops/attention.h ---------------------------------------------------------------------------
void attention(Builder& L) {
  L.group = "attention";
  auto sdpa = [](AttentionOptions o) {
    return [o](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], o); };
  };
  const AttentionOptions none;
  L.add({"scaled_dot_product_attention",
         "",
         {f({2, 3, 4}), f({2, 5, 4}), f({2, 5, 3})},
         sdpa(none),
         kGemm});
  L.add({"scaled_dot_product_attention",
         "broadcast batch",
         {f({2, 1, 3, 2}), f({3, 4, 2}), f({1, 4, 3})},
         sdpa(none),
         kGemm});
  L.add({"scaled_dot_product_attention",
         "size 1",
         {f({1, 1, 1}), f({1, 1, 1}), f({1, 1, 1})},
         sdpa(none),
         kGemm});
  L.add({"scaled_dot_product_attention",
         "one query, Ev 1",
         {f({2, 1, 3}), f({2, 4, 3}), f({2, 4, 1})},
         sdpa(none),
         kGemm});
  AttentionOptions causal;
  causal.is_causal = true;
  causal.scale = 0.7;
  L.add({"scaled_dot_product_attention",
         "causal scale 0.7",
         {f({2, 4, 3}), f({2, 4, 3}), f({2, 4, 2})},
         sdpa(causal),
         kGemm});
  // The benchmark: causal, B=32 H=4 T=64 Dh=32 (two batched GEMMs forward, four backward).
  AttentionOptions causal_default;
  causal_default.is_causal = true;
  L.add_layouts({"scaled_dot_product_attention",
                 "causal",
                 {f({2, 3, 4}), f({2, 3, 4}), f({2, 3, 2})},
                 sdpa(causal_default),
                 kGemm,
                 1e-5,
                 {f({32, 4, 64, 32}), f({32, 4, 64, 32}), f({32, 4, 64, 32})},
                 3.0 * 2 * (2.0 * 32 * 4 * 64 * 64 * 32)},
                {0, 1, 2});
  // A bool mask (an input, so it moves to the GPU too) broadcast over heads, every row allowed
  // somewhere; and one with fully masked rows (zero output, zero gradient: still differentiable).
  auto masked = [](const Inputs& x) {
    AttentionOptions o;
    o.attn_mask = x[3];
    return scaled_dot_product_attention(x[0], x[1], x[2], o);
  };
  std::vector<bool> allow = {true,  false, true,  true,  false, true,  false, true,
                             true,  true,  false, false, true,  false, true,  true,
                             false, true,  true,  false, true,  true,  false, true};
  L.add({"scaled_dot_product_attention",
         "bool mask broadcast over heads",
         {f({2, 2, 3, 3}), f({2, 2, 4, 3}), f({2, 2, 4, 2}), fixed(bools(allow, {2, 1, 3, 4}))},
         masked,
         kGemm});
  std::vector<bool> rows = allow;
  for (int j = 0; j < 4; ++j) rows[static_cast<size_t>(4 + j)] = false;  // batch 0, query 1
  L.add({"scaled_dot_product_attention",
         "fully masked row",
         {f({2, 3, 3}), f({2, 4, 3}), f({2, 4, 2}), fixed(bools(rows, {2, 3, 4}))},
         masked,
         kGemm});
  // A float mask that itself requires grad (a learned bias), broadcast over the batch.
  L.add({"scaled_dot_product_attention",
         "float mask with gradient",
         {f({2, 3, 2}), f({2, 4, 2}), f({2, 4, 2}), f({3, 4})},
         masked,
         kGemm});
  // Multi-head layout: [B, L, H*E] split into heads by a view + transpose, merged back.
  L.add(
      {"scaled_dot_product_attention",
       "heads split by views",
       {f({2, 3, 4}), f({2, 5, 4})},
       [](const Inputs& x) {
         auto heads = [](const Tensor& t) {
           return t.view({t.size(0), t.size(1), 2, 2}).transpose(1, 2);  // [B, H, T, E]
         };
         return scaled_dot_product_attention(heads(x[0]), heads(x[1]), heads(x[1])).transpose(1, 2);
       },
       kGemm});
  L.add({"scaled_dot_product_attention",
         "q transposed, k expanded",
         {f({2, 3, 5}), f({1, 4, 3}), f({2, 4, 2})},
         [](const Inputs& x) {
           return scaled_dot_product_attention(x[0].transpose(1, 2), x[1].expand({2, 4, 3}), x[2]);
         },
         kGemm});
  // Dropout on the weights: a fresh generator on every call, so every evaluation drops the same.
  L.add({"scaled_dot_product_attention",
         "dropout 0.4",
         {f({2, 3, 2}), f({2, 4, 2}), f({2, 4, 3})},
         [](const Inputs& x) {
           Generator g(11);
           AttentionOptions d;
           d.dropout_p = 0.4;
           d.generator = &g;
           return scaled_dot_product_attention(x[0], x[1], x[2], d);
         },
         kGemm});
  L.add({"scaled_dot_product_attention_with_weights",
         "weights, causal",
         {f({2, 4, 3}), f({2, 5, 3}), f({2, 5, 2})},
         [](const Inputs& x) {
           AttentionOptions o;
           o.is_causal = true;
           return scaled_dot_product_attention_with_weights(x[0], x[1], x[2], o).weights;
         },
         kGemm});
}

// ---- nn/losses.h: the functional losses (composed of the ops above; no Node of their own) ------
void nn_losses(Builder& L) {
  L.group = "nn_losses";
  auto clip = [](const Inputs& x) { return nn::clip_loss(x[0], x[1], x[2]).loss; };
  L.add({"clip_loss",
         "",
         {f({4, 3}), f({4, 3}), value({}, 0.7)},
         clip,
         kGemm,
         1e-5,
         {f({256, 512}), f({256, 512}), value({}, 2.659)}});
  L.add({"clip_loss",
         "image embeddings transposed",
         {f({5, 2}), f({2, 5}), value({}, 1.5)},
         [](const Inputs& x) { return nn::clip_loss(x[0].t(), x[1], x[2]).loss; },
         kGemm});
  L.add({"clip_loss", "batch of 1", {f({1, 3}), f({1, 3}), value({}, 0.2)}, clip, kGemm});
  L.add({"clip_loss",
         "logits_per_text",
         {f({3, 4}), f({3, 4}), value({}, 0.4)},
         [](const Inputs& x) { return nn::clip_loss(x[0], x[1], x[2]).logits_per_text; },
         kGemm});
  L.add({"clip_loss", "[1] logit scale", {f({3, 2}), f({3, 2}), value({1}, 0.3)}, clip, kGemm});
  L.add({"three_way_contrastive_loss",
         "c transposed",
         {f({3, 4}), f({3, 4}), f({4, 3}), value({}, 0.9)},
         [](const Inputs& x) { return nn::three_way_contrastive_loss(x[0], x[1], x[2].t(), x[3]); },
         kGemm});
  L.add({"pair_contrastive_loss",
         "b transposed",
         {f({4, 3}), f({3, 4}), fixed(bools({true, false, true, false}, {4}))},
         [](const Inputs& x) { return nn::pair_contrastive_loss(x[0], x[1].t(), x[2]); }});
  // A large margin keeps every triplet active (away from the hinge's kink).
  for (double p : {2.0, 1.5, 3.0}) {
    L.add({"triplet_margin_loss",
           cat_str("margin 20 p ", p),
           {f({3, 4}), f({3, 4}), f({3, 4})},
           [p](const Inputs& x) { return nn::triplet_margin_loss(x[0], x[1], x[2], 20.0, p); }});
  }
  L.add({"triplet_margin_loss",
         "empty batch",
         {f({0, 4}), f({0, 4}), f({0, 4})},
         [](const Inputs& x) { return nn::triplet_margin_loss(x[0], x[1], x[2]); }});
  L.add({"pair_contrastive_loss",
         "empty batch",
         {f({0, 3}), f({0, 3}), fixed(Tensor::zeros({0}, kBool))},
         [](const Inputs& x) { return nn::pair_contrastive_loss(x[0], x[1], x[2]); }});
  L.add({"triplet_margin_loss",
         "swap sum, anchor transposed",
         {f({4, 3}), f({3, 4}), f({3, 4})},
         [](const Inputs& x) {
           return nn::triplet_margin_loss(x[0].t(), x[1], x[2], 20.0, 2.0, 1e-6, true,
                                          Reduction::Sum);
         }});
}

std::vector<OpCase> build() {
  Builder L;
  elementwise(L);
  reductions(L);
  shape_ops(L);
  matmul_ops(L);
  softmax_ops(L);
  losses(L);
  norms(L);
  dropouts(L);
  indexing(L);
  sorting(L);
  convs(L);
  convs3d(L);
  interpolation(L);
  attention(L);
  nn_losses(L);
  return std::move(L.cases);
}

}  // namespace

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = build();
  return cases;
}

std::vector<std::string> op_groups() {
  std::vector<std::string> g;
  for (const OpCase& c : op_cases())
    if (g.empty() || g.back() != c.group) g.push_back(c.group);
  return g;
}

std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for (const OpCase& c : op_cases())
    if (std::find(names.begin(), names.end(), c.op) == names.end()) names.push_back(c.op);
  return names;
}

// Declarations in the scanned headers that need no case of their own.
const std::vector<Exemption>& exemptions() {
  static const std::vector<Exemption> e = {
      {"empty_as", "ops/common.h: allocates an uninitialised tensor for an op's output; no math"},
  };
  return e;
}

// ---- running a case ----------------------------------------------------------------------------

Inputs make_inputs(const OpCase& c, DType dt, Device device, bool bench) {
  const bool use_bench = bench && !c.bench.empty();
  const std::vector<Arg>& args = use_bench ? c.bench : c.args;
  Inputs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const Arg& a = args[i];
    const bool viewed = !use_bench && static_cast<int>(i) == c.view_arg;
    const Shape s = viewed ? stored_shape(c.layout, a.shape) : a.shape;
    const uint64_t seed = seed_of(c.name, i);
    Tensor t;
    switch (a.kind) {
      case Arg::Kind::Float:
      case Arg::Kind::Constant:
        t = draw(s, a.domain, seed).to(dt);
        break;
      case Arg::Kind::Value:
        t = Tensor::full(s, a.value, dt);
        break;
      case Arg::Kind::Index: {
        Generator g(seed);
        t = Tensor::randint(0, a.high, s, kInt64, &g);
        break;
      }
      case Arg::Kind::Mask: {
        Generator g(seed);
        t = Tensor::rand(s, kFloat64, &g).lt(a.value);
        break;
      }
      case Arg::Kind::Fixed:
        t = a.fixed.is_floating_point() ? a.fixed.to(dt) : a.fixed;
        t = t.clone();
        break;
    }
    t = t.detach();
    if (device != kCPU) t = t.to(device);
    if (a.differentiable()) t.requires_grad_();
    out.push_back(t);
  }
  return out;
}

Tensor call(const OpCase& c, const Inputs& leaves) {
  if (c.view_arg < 0) return c.fn(leaves);
  const auto i = static_cast<size_t>(c.view_arg);
  Inputs in = leaves;
  in[i] = layout_view(c.layout, leaves[i], c.args[i].shape);
  return c.fn(in);
}

OpFn as_fn(const OpCase& c) {
  return [&c](const Inputs& x) { return call(c, x); };
}

}  // namespace mmgrad::oplist
