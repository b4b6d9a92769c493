// Checker for task 2.2: the learner's InfoNCE loss and its gradients (autograd through the
// learner's ops) against lesson 02's formula written out with log_softmax and gather.
#include <cmath>

#include "checks.h"

namespace mmgrad::exercises {

namespace {

// Lesson 02, section 2 (e)-(g): normalise, scale the cosines, -log softmax of the diagonal in
// each direction, averaged. The truth the checker compares with (independent of nn::clip_loss,
// which the solution calls).
Tensor by_hand(const Tensor& image_emb, const Tensor& text_emb, const Tensor& logit_scale) {
  Tensor logits = exp(logit_scale) * matmul(normalize(image_emb, 1), normalize(text_emb, 1).t());
  Tensor labels = Tensor::arange(image_emb.size(0)).unsqueeze(1);
  Tensor i2t = -mean(gather(log_softmax(logits, 1), 1, labels));
  Tensor t2i = -mean(gather(log_softmax(logits.t(), 1), 1, labels));
  return (i2t + t2i) * 0.5;
}

}  // namespace

void check_info_nce(Checker& c, decltype(&info_nce) f) {
  Generator gen(22);
  struct Case {
    std::string what;
    int64_t n, d;
    double temperature;
    DType dtype;
    double noise;  // text = image + noise * randn: 0 gives identical pairs, large unrelated ones
    std::string hint;
  };
  const std::vector<Case> cases = {
      {"4 partly aligned pairs, D = 8, tau = 0.07 (lesson 02's batch)", 4, 8, 0.07, DType::Float64,
       0.8,
       "loss = (mean_i -log softmax(row i)[i] + mean_j -log softmax(column j)[j]) / 2 of "
       "logits = exp(logit_scale) * normalize(I) normalize(T)^T"},
      {"5 random pairs, D = 6, tau = 1 (logit_scale = 0)", 5, 6, 1.0, DType::Float64, 10.0,
       "logit_scale = 0 means exp(0) = 1: the logits are the cosines themselves"},
      {"a batch of one pair", 1, 4, 0.07, DType::Float64, 0.5,
       "with one pair there is nothing to contrast: each softmax has one entry, the loss is 0"},
      {"7 pairs, D = 3, tau = 0.2", 7, 3, 0.2, DType::Float64, 0.6,
       "both directions: the column softmax (text -> image) differs from the row softmax"},
      {"8 pairs, D = 16, tau = 0.05, float32", 8, 16, 0.05, DType::Float32, 0.7,
       "float32 inputs give a float32 loss; compute in the inputs' dtype"},
  };
  for (const Case& k : cases) {
    const double tol = k.dtype == DType::Float64 ? 1e-9 : 2e-5;
    Tensor img = Tensor::randn({k.n, k.d}, k.dtype, &gen);
    Tensor txt = img + Tensor::randn({k.n, k.d}, k.dtype, &gen) * k.noise;
    Tensor scale = Tensor::scalar(std::log(1.0 / k.temperature), k.dtype);
    // Separate leaves for the learner's loss and the truth, so their gradients stay apart.
    Tensor a = img.clone().requires_grad_(), b = txt.clone().requires_grad_();
    Tensor s = scale.clone().requires_grad_();
    Tensor a0 = img.clone().requires_grad_(), b0 = txt.clone().requires_grad_();
    Tensor s0 = scale.clone().requires_grad_();
    Tensor want = by_hand(a0, b0, s0);
    want.backward();

    Tensor got = f(a, b, s);
    c.shape(k.what + ": the loss", got, {}, "return one number as a 0-d tensor: mean over rows");
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
    struct Input {
      const char* name;
      Tensor mine, truth;
      std::string hint;
    };
    for (const Input& in :
         {Input{"image_emb", a, a0,
                "dL/d(image_emb) flows through normalize and both softmax directions"},
          Input{"text_emb", b, b0,
                "dL/d(text_emb) flows through normalize and both softmax directions"},
          Input{"logit_scale", s, s0,
                "the logits are exp(logit_scale) * cosines: keep logit_scale a tensor in the "
                "graph (no .item(), no detach), multiplied in through exp()"}}) {
      const std::string what = cat_str(k.what, ": dL/d(", in.name, ")");
      if (!in.mine.grad().defined())
        c.expect(false, what,
                 cat_str("backward() of your loss never reached ", in.name,
                         ": it is not used through differentiable ops (detached or .item()?)"));
      c.close(what, in.mine.grad(), in.truth.grad(), 10 * tol, 10 * tol, in.hint);
    }
  }
}

namespace {
Tensor labels_of(const Tensor& x) { return Tensor::arange(x.size(0)); }
// Only the image -> text direction (the row softmax).
Tensor one_direction(const Tensor& a, const Tensor& b, const Tensor& s) {
  Tensor logits = exp(s) * matmul(normalize(a, 1), normalize(b, 1).t());
  return cross_entropy(logits, labels_of(a));
}
// Dot products instead of cosines: forgets to normalise the rows.
Tensor unnormalised(const Tensor& a, const Tensor& b, const Tensor& s) {
  Tensor logits = exp(s) * matmul(a, b.t());
  Tensor y = labels_of(a);
  return (cross_entropy(logits, y) + cross_entropy(logits.t(), y)) * 0.5;
}
// Divides the cosines by exp(logit_scale), as if it were the temperature itself.
Tensor divides_by_scale(const Tensor& a, const Tensor& b, const Tensor& s) {
  Tensor logits = matmul(normalize(a, 1), normalize(b, 1).t()) / exp(s);
  Tensor y = labels_of(a);
  return (cross_entropy(logits, y) + cross_entropy(logits.t(), y)) * 0.5;
}
// Multiplies by logit_scale itself, forgetting that it is a logarithm.
Tensor forgets_exp(const Tensor& a, const Tensor& b, const Tensor& s) {
  Tensor logits = s * matmul(normalize(a, 1), normalize(b, 1).t());
  Tensor y = labels_of(a);
  return (cross_entropy(logits, y) + cross_entropy(logits.t(), y)) * 0.5;
}
// Normalises the columns (dim 0) instead of the rows.
Tensor normalises_columns(const Tensor& a, const Tensor& b, const Tensor& s) {
  Tensor logits = exp(s) * matmul(normalize(a, 0), normalize(b, 0).t());
  Tensor y = labels_of(a);
  return (cross_entropy(logits, y) + cross_entropy(logits.t(), y)) * 0.5;
}
// The right number, but the temperature is treated as a constant (logit_scale detached).
Tensor detached_scale(const Tensor& a, const Tensor& b, const Tensor& s) {
  return solution::info_nce(a, b, s.detach());
}
// The right number, computed with .item() and wrapped in a fresh tensor: no graph at all.
Tensor loses_the_graph(const Tensor& a, const Tensor& b, const Tensor& s) {
  return Tensor::scalar(solution::info_nce(a, b, s).item(), a.dtype());
}
}  // namespace

std::vector<Mutant> mutants_info_nce() {
  return {
      {"one direction only (image -> text)", [](Checker& c) { check_info_nce(c, &one_direction); }},
      {"forgets to normalise", [](Checker& c) { check_info_nce(c, &unnormalised); }},
      {"divides by exp(logit_scale) instead of multiplying",
       [](Checker& c) { check_info_nce(c, &divides_by_scale); }},
      {"multiplies by logit_scale, not exp(logit_scale)",
       [](Checker& c) { check_info_nce(c, &forgets_exp); }},
      {"normalises the columns", [](Checker& c) { check_info_nce(c, &normalises_columns); }},
      {"right value, logit_scale detached", [](Checker& c) { check_info_nce(c, &detached_scale); }},
      {"right value, computed with .item() (no graph)",
       [](Checker& c) { check_info_nce(c, &loses_the_graph); }},
  };
}

}  // namespace mmgrad::exercises
