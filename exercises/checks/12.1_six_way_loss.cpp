// Checker for task 12.1: the learner's six-way loss and its gradients (autograd through the
// learner's ops) against the library's nn::three_way_contrastive_loss (the mean of nn::clip_loss
// over the three pairs), an implementation independent of the lesson's, which the solution calls.
#include <cmath>

#include "checks.h"
#include "mmgrad/nn/losses.h"

namespace mmgrad::exercises {

void check_six_way_loss(Checker& c, decltype(&six_way_loss) f) {
  Generator gen(121);
  struct Case {
    std::string what;
    int64_t n, d;
    double temperature;  // logit_scale = log(1 / temperature)
    DType dtype;
    double noise;  // image and text = audio + noise * randn (each its own noise)
    double size;   // the inputs are multiplied by this (cosines do not care)
    std::string hint;
  };
  const std::vector<Case> cases = {
      {"3 partly aligned triples, D = 4, tau = 1 (logit_scale = 0)", 3, 4, 1.0, DType::Float64, 0.8,
       1.0,
       "loss = mean of the six terms L(a->i), L(i->a), L(a->t), L(t->a), L(i->t), L(t->i); "
       "L(x->y) = cross_entropy(s * normalize(x) normalize(y)^T, 0..N-1)"},
      {"5 random triples, D = 6, tau = 0.07", 5, 6, 0.07, DType::Float64, 3.0, 1.0,
       "L(x->y) and L(y->x) differ: one is a softmax over the rows of x y^T, the other over "
       "its columns (the rows of y x^T); all six terms count, each with weight 1/6"},
      {"4 triples of long vectors (size 7), D = 5, tau = 0.2", 4, 5, 0.2, DType::Float64, 0.6, 7.0,
       "the logits use cosines: normalise every row of audio, image and text to unit length "
       "first"},
      {"4 triples, D = 5, temperature 0.005 (above CLIP's cap)", 4, 5, 0.005, DType::Float64, 0.7,
       1.0,
       "the scale is exp(min(logit_scale, log 100)): 1 / 0.005 = 200 must be capped at 100 "
       "(clamp_max), and then the loss does not depend on logit_scale (gradient 0)"},
      {"6 triples, D = 8, tau = 0.1, float32", 6, 8, 0.1, DType::Float32, 0.9, 1.0,
       "float32 inputs give a float32 loss; compute in the inputs' dtype"},
  };
  for (const Case& k : cases) {
    const double tol = k.dtype == DType::Float64 ? 1e-9 : 2e-5;
    Tensor aud = Tensor::randn({k.n, k.d}, k.dtype, &gen) * k.size;
    Tensor img = aud + Tensor::randn({k.n, k.d}, k.dtype, &gen) * (k.noise * k.size);
    Tensor txt = aud + Tensor::randn({k.n, k.d}, k.dtype, &gen) * (k.noise * k.size);
    Tensor scale = Tensor::scalar(std::log(1.0 / k.temperature), k.dtype);
    // Separate leaves for the learner's loss and the truth, so their gradients stay apart.
    std::vector<Tensor> mine, truth;
    for (const Tensor& t : {aud, img, txt, scale}) {
      mine.push_back(t.clone().requires_grad_());
      truth.push_back(t.clone().requires_grad_());
    }
    Tensor want = nn::three_way_contrastive_loss(truth[0], truth[1], truth[2], truth[3]);
    want.backward();

    Tensor got = f(mine[0], mine[1], mine[2], mine[3]);
    c.shape(k.what + ": the loss", got, {}, "return one number as a 0-d tensor");
    if (got.dtype() != k.dtype)
      c.expect(
          false, k.what + ": the loss's dtype",
          cat_str("it is ", dtype_name(got.dtype()), " but the inputs are ", dtype_name(k.dtype)));
    c.close(k.what + ": the loss", got, want, tol, tol, k.hint);
    if (!got.requires_grad())
      c.expect(false, k.what + ": the loss is part of the autograd graph",
               "your loss does not require grad, so backward() cannot reach the inputs. Build it "
               "from mmgrad ops on the inputs themselves: no .item(), to_vector(), detach() or "
               "NoGradGuard on the way");
    got.backward();
    const char* names[4] = {"audio", "image", "text", "logit_scale"};
    for (size_t j = 0; j < 4; ++j) {
      const std::string what = cat_str(k.what, ": dL/d(", names[j], ")");
      if (!mine[j].grad().defined()) {
        // Above the cap the scale gets no gradient: an undefined grad is as good as zeros there.
        if (j == 3 && truth[3].grad().defined() && truth[3].grad().abs().max().item() == 0.0)
          continue;
        c.expect(false, what,
                 cat_str("backward() of your loss never reached ", names[j],
                         ": it is not used through differentiable ops (detached or .item()?)"));
      }
      c.close(what, mine[j].grad(), truth[j].grad(), 10 * tol, 10 * tol,
              j == 3 ? "the logits are exp(min(logit_scale, log 100)) * cosines: keep "
                       "logit_scale in the graph, through clamp_max and exp"
                     : k.hint);
    }
  }
}

namespace {
Tensor targets(const Tensor& x) { return Tensor::arange(x.size(0)).to(x.device()); }
Tensor capped(const Tensor& s) { return exp(clamp_max(s, std::log(100.0))); }
Tensor term(const Tensor& x, const Tensor& y, const Tensor& scale) {
  return cross_entropy(scale * matmul(normalize(x, 1), normalize(y, 1).t()), targets(x));
}
// One direction per pair: a->i, a->t, i->t (three terms).
Tensor one_direction(const Tensor& a, const Tensor& i, const Tensor& t, const Tensor& s) {
  const Tensor k = capped(s);
  return (term(a, i, k) + term(a, t, k) + term(i, t, k)) * (1.0 / 3.0);
}
// Forgets the image-text pair: only the pairs with audio (four terms).
Tensor audio_pairs_only(const Tensor& a, const Tensor& i, const Tensor& t, const Tensor& s) {
  const Tensor k = capped(s);
  return (term(a, i, k) + term(i, a, k) + term(a, t, k) + term(t, a, k)) * 0.25;
}
// Sums the six terms instead of averaging them.
Tensor sums(const Tensor& a, const Tensor& i, const Tensor& t, const Tensor& s) {
  const Tensor k = capped(s);
  return term(a, i, k) + term(i, a, k) + term(a, t, k) + term(t, a, k) + term(i, t, k) +
         term(t, i, k);
}
// Dot products instead of cosines.
Tensor unnormalised(const Tensor& a, const Tensor& i, const Tensor& t, const Tensor& s) {
  const Tensor k = capped(s);
  auto raw = [&](const Tensor& x, const Tensor& y) {
    return cross_entropy(k * matmul(x, y.t()), targets(x));
  };
  return (raw(a, i) + raw(i, a) + raw(a, t) + raw(t, a) + raw(i, t) + raw(t, i)) * (1.0 / 6.0);
}
// exp(logit_scale) without CLIP's cap at 100.
Tensor no_cap(const Tensor& a, const Tensor& i, const Tensor& t, const Tensor& s) {
  const Tensor k = exp(s);
  return (term(a, i, k) + term(i, a, k) + term(a, t, k) + term(t, a, k) + term(i, t, k) +
          term(t, i, k)) *
         (1.0 / 6.0);
}
// The right number, but the temperature is treated as a constant (logit_scale detached).
Tensor detached_scale(const Tensor& a, const Tensor& i, const Tensor& t, const Tensor& s) {
  return solution::six_way_loss(a, i, t, s.detach());
}
}  // namespace

std::vector<Mutant> mutants_six_way_loss() {
  return {
      {"one direction per pair (three terms)",
       [](Checker& c) { check_six_way_loss(c, &one_direction); }},
      {"forgets the image-text pair", [](Checker& c) { check_six_way_loss(c, &audio_pairs_only); }},
      {"sums the six terms instead of averaging", [](Checker& c) { check_six_way_loss(c, &sums); }},
      {"dot products instead of cosines", [](Checker& c) { check_six_way_loss(c, &unnormalised); }},
      {"no cap on the scale", [](Checker& c) { check_six_way_loss(c, &no_cap); }},
      {"logit_scale detached", [](Checker& c) { check_six_way_loss(c, &detached_scale); }},
  };
}

}  // namespace mmgrad::exercises
