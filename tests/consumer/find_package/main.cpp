// A program outside mmgrad that uses it as a library, as a user's own project would: the headers
// by their installed names (<mmgrad/...>), nothing from mmgrad's source tree. The package tests
// (ctest -L package) build it against an installed mmgrad with find_package and with pkg-config,
// and `make package-check` builds it with mmgrad added by add_subdirectory.
//
// It trains a small MLP to separate two noisy clusters, saves and reloads the model (a checkpoint:
// this links zlib's crc32 through the archive), and exits non-zero unless the training loss fell,
// the held-out accuracy is far above chance and the reloaded model predicts the same.
#include <mmgrad/mmgrad.h>         // tensors, autograd, every op
#include <mmgrad/nn/checkpoint.h>  // save(module, path), load(module, path)
#include <mmgrad/nn/layers.h>      // nn::Linear, nn::MLP, ...
#include <mmgrad/optim/optim.h>    // optim::Adam, ...

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

using namespace mmgrad;

namespace {

// Labels 0 / 1; points scattered (sd 0.7) around (-1, -1) and (+1, +1).
std::pair<Tensor, Tensor> make_blobs(int64_t n, Generator& gen) {
  Tensor y = Tensor::randint(0, 2, {n}, DType::Int64, &gen);
  Tensor centre = y.to(DType::Float32).unsqueeze(1) * 2.0 - 1.0;
  Tensor x = centre + Tensor::randn({n, 2}, {}, &gen) * 0.7;
  return {x, y};
}

double accuracy(nn::Module& model, const Tensor& x, const Tensor& y) {
  NoGradGuard no_grad;  // evaluation records no graph
  Tensor pred = model.forward(x).argmax(1);
  return pred.eq(y).to(DType::Float32).mean().item();
}

}  // namespace

int main(int argc, char** argv) {
  Generator gen(0);
  auto [x_train, y_train] = make_blobs(256, gen);
  auto [x_test, y_test] = make_blobs(256, gen);  // held out: never trained on

  auto model = std::make_shared<nn::MLP>(std::vector<int64_t>{2, 16, 2});  // 2 -> 16 -> 2
  optim::Adam opt(model->parameters(), {.lr = 1e-2});
  double first = 0, last = 0;
  const int steps = 60;
  for (int step = 0; step < steps; ++step) {
    Tensor loss = cross_entropy(model->forward(x_train), y_train);
    opt.zero_grad();
    loss.backward();  // reverse mode: fills p.grad() for every parameter
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  model->eval();
  const double acc = accuracy(*model, x_test, y_test);

  // A checkpoint round trip: a fresh model with the saved weights predicts the same.
  const std::string path = argc > 1 ? argv[1] : "consumer.ckpt";
  save(*model, path);
  auto reloaded = std::make_shared<nn::MLP>(std::vector<int64_t>{2, 16, 2});
  load(*reloaded, path);
  reloaded->eval();
  std::filesystem::remove(path);
  const double acc_reloaded = accuracy(*reloaded, x_test, y_test);

  std::printf(
      "consumer: loss %.4f -> %.4f in %d Adam steps, held-out accuracy %.3f "
      "(reloaded %.3f)\n",
      first, last, steps, acc, acc_reloaded);
  // Chance is 0.5 and the clusters' Bayes accuracy about 0.98.
  const bool ok = last < 0.5 * first && acc > 0.9 && acc_reloaded == acc;
  std::printf("consumer: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
