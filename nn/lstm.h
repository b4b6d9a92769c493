// LSTM (PyTorch's nn.LSTM): a recurrent network that reads a sequence one step at a time and
// carries a memory from step to step.
//
// WHY GATES. A plain recurrent net, h_t = tanh(W x_t + U h_{t-1}), multiplies its gradient by U
// (and a tanh slope) once per step on the way back, so over many steps the gradient shrinks to
// nothing or blows up, and the net cannot learn to remember something from 20 steps ago. The LSTM
// (Hochreiter & Schmidhuber, 1997) adds a second state, the CELL c_t, that is changed only by
// elementwise gates between 0 and 1, so information (and gradient) can pass many steps unchanged:
//
//   [i; f; g; o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh   (4 blocks of hidden_size rows, in
//                                                            PyTorch's order i, f, g, o)
//   i = sigmoid(i)   input gate:  how much of the new candidate to write      (0 = write nothing)
//   f = sigmoid(f)   forget gate: how much of the old cell to keep           (1 = keep it all)
//   g = tanh(g)      candidate:   the new content, in [-1, 1]
//   o = sigmoid(o)   output gate: how much of the cell to show as output
//   c_t = f * c_{t-1} + i * g      the memory: keep part of the old, add part of the new
//   h_t = o * tanh(c_t)            the output at step t (and the recurrent input of step t+1)
//
// Along the cell, dc_{t-1} = f * dc_t: a forget gate near 1 passes the gradient back unchanged,
// which is what lets an LSTM learn long-range dependencies.
//
// A multi-layer LSTM stacks these: layer k > 0 reads the outputs h_t of layer k-1 as its x_t
// (with dropout between layers in training mode when dropout > 0, as PyTorch).
//
// Shapes (PyTorch's): input [T, B, input_size], or [B, T, input_size] with batch_first, or an
// unbatched [T, input_size]. output holds h_t of the LAST layer at every step: [T, B, H] (or
// [B, T, H]). h_n and c_n hold the final state of EVERY layer: [num_layers, B, H] whatever
// batch_first says (PyTorch's convention), [num_layers, H] unbatched. The initial state
// (h_0, c_0) has that shape too and defaults to zeros.
//
// Parameters, per layer k, with PyTorch's names (so a state dict reads like PyTorch's):
//   weight_ih_l{k} [4H, in_k] (in_0 = input_size, in_k = H above), weight_hh_l{k} [4H, H],
//   bias_ih_l{k} [4H], bias_hh_l{k} [4H]; all drawn from U(-1/sqrt(H), 1/sqrt(H)) as PyTorch.
// The two biases are redundant (only their sum matters) but kept, as in PyTorch and cuDNN, so
// weights load from one into the other.
//
// Not supported (as PyTorch's options): bidirectional, proj_size.
//
// How it is computed: COMPOSED from matmul, sigmoid, tanh, mul, add and shape ops, so the
// backward (backpropagation through time) comes from autograd and it runs on every device. The
// input projection W_ih x_t + b_ih + b_hh does not depend on the previous step, so it is ONE
// matmul over all T*B rows per layer before the time loop; each step then runs only the small
// [B, H] x [H, 4H] recurrent matmul and the gate arithmetic. No fused cell kernel: on a lesson-
// sized model the GEMMs dominate (nn/lstm.cpp has the measurement).
#pragma once

#include <vector>

#include "mmgrad/nn/module.h"

namespace mmgrad::nn {

struct LSTMOptions {
  int64_t num_layers = 1;
  bool bias = true;          // false: no bias_ih / bias_hh parameters
  bool batch_first = false;  // PyTorch's default: input and output are [T, B, features]
  double dropout = 0.0;      // on the outputs of every layer but the last, in training mode
};

// The recurrent state, (h, c) in PyTorch: each [num_layers, B, hidden_size].
struct LSTMState {
  Tensor h, c;
};

struct LSTMOutput {
  Tensor output;  // h_t of the last layer at every step: [T, B, H] or [B, T, H] (batch_first)
  Tensor h_n;     // final h of every layer: [num_layers, B, H]
  Tensor c_n;     // final c of every layer: [num_layers, B, H]
  LSTMState state() const { return {h_n, c_n}; }  // to continue the sequence later
};

class LSTM : public Module {
 public:
  // nn::LSTM(16, 64, {.num_layers = 2, .batch_first = true})
  LSTM(int64_t input_size, int64_t hidden_size, LSTMOptions options = {});

  // hx = {h_0, c_0}: both given or both undefined (zeros).
  LSTMOutput forward(const Tensor& input, const LSTMState& hx);
  // forward(input, {}).output: the outputs only (so Sequential can chain it).
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "LSTM"; }
  std::string extra_repr() const override;
  void reset_parameters();

  int64_t input_size, hidden_size;
  LSTMOptions options;
  // per layer; bias_ih / bias_hh are empty (undefined tensors) without bias
  std::vector<Tensor> weight_ih, weight_hh, bias_ih, bias_hh;
};

}  // namespace mmgrad::nn
