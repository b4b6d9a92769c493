// The code example of README.md, compiled and run, so the README cannot drift from the API.
// Keep the block between the BEGIN/END markers identical to the README's.
#include <doctest/doctest.h>

#include "mmgrad/mmgrad.h"       // tensors, autograd, every op
#include "mmgrad/nn/layers.h"    // nn::Linear, nn::MLP, ...
#include "mmgrad/optim/optim.h"  // optim::SGD, optim::Adam, ...

using namespace mmgrad;

namespace {

// BEGIN README EXAMPLE
// Two noisy clusters in 2-D; a small MLP learns to tell them apart.
std::pair<Tensor, Tensor> make_blobs(int64_t n, Generator& gen) {
  Tensor y = Tensor::randint(0, 2, {n}, DType::Int64, &gen);      // labels 0 / 1
  Tensor centre = y.to(DType::Float32).unsqueeze(1) * 2.0 - 1.0;  // -1 or +1
  Tensor x = centre + Tensor::randn({n, 2}, {}, &gen) * 0.7;      // [n, 2]
  return {x, y};
}

double train_and_test() {
  Generator gen(0);
  auto [x_train, y_train] = make_blobs(512, gen);
  auto [x_test, y_test] = make_blobs(256, gen);  // held out: never trained on

  auto model = std::make_shared<nn::MLP>(std::vector<int64_t>{2, 32, 2});  // 2 -> 32 -> 2
  optim::Adam opt(model->parameters(), {.lr = 1e-2});
  for (int step = 0; step < 200; ++step) {
    Tensor loss = cross_entropy(model->forward(x_train), y_train);
    opt.zero_grad();
    loss.backward();  // reverse mode: fills p.grad() for every parameter
    opt.step();
  }

  NoGradGuard no_grad;  // evaluation records no graph
  model->eval();
  Tensor pred = model->forward(x_test).argmax(1);
  return pred.eq(y_test).to(DType::Float32).mean().item();  // test accuracy
}
// END README EXAMPLE

}  // namespace

TEST_CASE("README example: an MLP separates two clusters on held-out points") {
  double acc = train_and_test();
  // The clusters overlap a little (noise 0.7 around +-1 per coordinate): the Bayes accuracy is
  // about 0.98, and chance is 0.5.
  CHECK(acc > 0.9);
  CHECK(acc <= 1.0);
}
