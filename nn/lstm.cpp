// nn::LSTM, composed from differentiable ops (the equations and the reasons are in nn/lstm.h).
//
// Why no fused cell kernel: measured (float32, 1 thread, CPU time) on a lesson-sized model,
// B = 32, T = 20, input 40, hidden 64, 2 layers, forward + backward:
//   the whole LSTM                                           4.8 ms
//   its GEMMs alone (2 input projections + 40 recurrent)     3.2 ms
// so the gate arithmetic and the graph bookkeeping are about a third. A fused cell (one kernel
// for the gates, c_t and h_t, with a hand-written backward) could save at most that third, and
// would need its own CUDA kernel and reference loop. Not worth it at these sizes.
#include "mmgrad/nn/lstm.h"

#include <cmath>

#include "mmgrad/nn/checks.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/ops/dropout.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/index.h"
#include "mmgrad/ops/matmul.h"
#include "mmgrad/ops/shape.h"

namespace mmgrad::nn {

LSTM::LSTM(int64_t input_size, int64_t hidden_size, LSTMOptions options)
    : input_size(input_size), hidden_size(hidden_size), options(options) {
  MMGRAD_CHECK(input_size > 0 && hidden_size > 0 && options.num_layers > 0,
               "LSTM: input_size, hidden_size and num_layers must be positive, got input_size ",
               input_size, ", hidden_size ", hidden_size, ", num_layers ", options.num_layers);
  MMGRAD_CHECK(options.dropout >= 0 && options.dropout < 1, "LSTM: dropout must be in [0, 1), got ",
               options.dropout);
  const int64_t H = hidden_size;
  for (int64_t k = 0; k < options.num_layers; ++k) {
    const int64_t in = k == 0 ? input_size : H;
    const std::string l = "_l" + std::to_string(k);
    weight_ih.push_back(register_parameter("weight_ih" + l, Tensor::empty({4 * H, in})));
    weight_hh.push_back(register_parameter("weight_hh" + l, Tensor::empty({4 * H, H})));
    if (options.bias) {
      bias_ih.push_back(register_parameter("bias_ih" + l, Tensor::empty({4 * H})));
      bias_hh.push_back(register_parameter("bias_hh" + l, Tensor::empty({4 * H})));
    } else {
      bias_ih.emplace_back();
      bias_hh.emplace_back();
    }
  }
  reset_parameters();
}

void LSTM::reset_parameters() {
  // PyTorch: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))
  const double b = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  for (auto& [name, p] : named_parameters(false)) init::uniform_(p, -b, b);
}

LSTMOutput LSTM::forward(const Tensor& input, const LSTMState& hx) {
  const Tensor& w0 = weight_ih[0];
  detail::check_input(*this, input, w0);
  const bool bf = options.batch_first;
  MMGRAD_CHECK((input.dim() == 3 || input.dim() == 2) && input.size(-1) == input_size, label(),
               ": input is ", describe(input), "; expected ", bf ? "[B, T, " : "[T, B, ",
               input_size, "] (or unbatched [T, ", input_size, "])");
  const bool batched = input.dim() == 3;
  // time-major [T, B, features] from here on
  Tensor x = batched ? input : input.unsqueeze(1);
  if (batched && bf) x = x.transpose(0, 1);
  const int64_t T = x.size(0), B = x.size(1), H = hidden_size, L = options.num_layers;
  MMGRAD_CHECK(T > 0, label(), ": input ", describe(input), " has no time steps");

  MMGRAD_CHECK(hx.h.defined() == hx.c.defined(), label(),
               ": give both h_0 and c_0 or neither (zeros), got ",
               hx.h.defined() ? "h_0 only" : "c_0 only");
  const bool has_state = hx.h.defined();
  Tensor h0 = hx.h, c0 = hx.c;
  if (has_state) {
    const Shape want = batched ? Shape{L, B, H} : Shape{L, H};
    for (auto [t, what] : {std::pair{h0, "h_0"}, std::pair{c0, "c_0"}}) {
      detail::check_input(*this, t, w0, what);
      MMGRAD_CHECK(t.shape() == want, label(), ": ", what, " is ", describe(t), "; expected ",
                   want.str(), " ([num_layers, ", batched ? "B, " : "", "hidden_size])");
    }
    if (!batched) {
      h0 = h0.unsqueeze(1);
      c0 = c0.unsqueeze(1);
    }
  }

  Tensor layer_in = x;  // [T, B, in_k]
  std::vector<Tensor> h_n, c_n;
  for (int64_t k = 0; k < L; ++k) {
    const auto kk = static_cast<size_t>(k);
    // The input projection of every step at once: [T*B, in_k] @ W_ih^T (+ b_ih + b_hh).
    Tensor xw = matmul(layer_in.reshape({T * B, layer_in.size(2)}), weight_ih[kk].t());
    if (options.bias) xw = add(xw, add(bias_ih[kk], bias_hh[kk]));
    xw = xw.view({T, B, 4 * H});
    const Tensor w_hh_t = weight_hh[kk].t();  // a view: the GEMM reads it transposed
    Tensor h = has_state ? h0.select(0, k) : Tensor(), c = has_state ? c0.select(0, k) : Tensor();
    std::vector<Tensor> hs;
    hs.reserve(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      // The recurrent term; with no h_0 the first step's h_{-1} is zero and adds nothing.
      Tensor gates = h.defined() ? add(xw.select(0, t), matmul(h, w_hh_t)) : xw.select(0, t);
      Tensor i_f = sigmoid(narrow(gates, 1, 0, 2 * H));  // i and f side by side: one kernel
      Tensor i = narrow(i_f, 1, 0, H), f = narrow(i_f, 1, H, H);
      Tensor g = tanh(narrow(gates, 1, 2 * H, H));
      Tensor o = sigmoid(narrow(gates, 1, 3 * H, H));
      c = c.defined() ? add(mul(f, c), mul(i, g)) : mul(i, g);  // c_{-1} = 0: f * c vanishes
      h = mul(o, tanh(c));
      hs.push_back(h);
    }
    h_n.push_back(h);
    c_n.push_back(c);
    const bool last = k == L - 1;
    // the last layer's outputs are stacked straight into the layout the caller asked for
    layer_in = stack(hs, last && batched && bf ? 1 : 0);
    if (!last && options.dropout > 0) layer_in = dropout(layer_in, options.dropout, is_training());
  }
  LSTMOutput out{layer_in, stack(h_n, 0), stack(c_n, 0)};
  if (!batched) {
    out.output = out.output.squeeze(1);
    out.h_n = out.h_n.squeeze(1);
    out.c_n = out.c_n.squeeze(1);
  }
  return out;
}

Tensor LSTM::forward(const Tensor& input) { return forward(input, LSTMState{}).output; }

std::string LSTM::extra_repr() const {
  std::string s = cat_str(input_size, ", ", hidden_size);
  if (options.num_layers != 1) s += cat_str(", num_layers=", options.num_layers);
  if (!options.bias) s += ", bias=false";
  if (options.batch_first) s += ", batch_first=true";
  if (options.dropout > 0) s += cat_str(", dropout=", options.dropout);
  return s;
}

}  // namespace mmgrad::nn
