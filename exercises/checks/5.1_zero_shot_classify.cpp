// Checker for task 5.1: the learner's ensemble scores and predictions against the recipe written
// out as plain float64 loops (independent of the lesson's functions, which the solution calls).
#include <cmath>

#include "checks.h"

namespace mmgrad::exercises {

namespace {

struct Truth {
  Tensor similarity, predicted;
};

// similarity[n][c] = cos(image n, sum_t prompt[t][c] / |prompt[t][c]|): the cosine ignores the
// final normalisation's length, so the plain sum of unit prompts is enough here.
Truth by_loops(const Tensor& image_emb, const Tensor& prompt_emb) {
  const int64_t N = image_emb.size(0), D = image_emb.size(1);
  const int64_t T = prompt_emb.size(0), C = prompt_emb.size(1);
  const std::vector<double> img = image_emb.to_vector<double>();
  const std::vector<double> pr = prompt_emb.to_vector<double>();
  auto norm = [&](const double* v) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += v[d] * v[d];
    return std::sqrt(s);
  };
  std::vector<double> cls(static_cast<size_t>(C * D), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) {
      const double* u = pr.data() + (t * C + c) * D;
      const double len = norm(u);
      for (int64_t d = 0; d < D; ++d) cls[static_cast<size_t>(c * D + d)] += u[d] / len;
    }
  std::vector<double> sim(static_cast<size_t>(N * C));
  std::vector<int64_t> pred(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    const double* a = img.data() + n * D;
    for (int64_t c = 0; c < C; ++c) {
      const double* b = cls.data() + c * D;
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += a[d] * b[d];
      sim[static_cast<size_t>(n * C + c)] = dot / (norm(a) * norm(b));
    }
    int64_t best = 0;
    for (int64_t c = 1; c < C; ++c)
      if (sim[static_cast<size_t>(n * C + c)] > sim[static_cast<size_t>(n * C + best)]) best = c;
    pred[static_cast<size_t>(n)] = best;
  }
  return {Tensor::from_vector(sim, {N, C}, DType::Float64), Tensor::from_vector(pred, {N})};
}

}  // namespace

void check_zero_shot_classify(Checker& c, decltype(&zero_shot_classify) f) {
  Generator gen(51);
  struct Case {
    std::string what;
    int64_t N, T, C, D;
    DType dtype;
    bool uneven;  // templates of very different lengths (0.1x, 1x, 10x, ...)
    std::string hint;
  };
  const std::vector<Case> cases = {
      {"one template (T = 1), 5 images, 3 classes", 5, 1, 3, 4, DType::Float64, false,
       "similarity[n][c] = cos(image n, prompt of class c): normalise both, then matmul"},
      {"3 templates of very different lengths, 8 images, 4 classes", 8, 3, 4, 6, DType::Float64,
       true,
       "normalise every prompt embedding BEFORE the mean over templates (dim 0 of [T, C, D]), "
       "then normalise the mean again: class[c] = normalize(mean_t normalize(prompt[t][c]))"},
      {"5 templates, 12 images, 10 classes (lesson 05's ensemble size)", 12, 5, 10, 16,
       DType::Float64, false,
       "the mean of unit vectors is shorter than 1: re-normalise it so the scores are cosines"},
      {"7 images, 4 templates, 6 classes, float32", 7, 4, 6, 8, DType::Float32, true,
       "float32 inputs: return the similarities in float32"},
  };
  for (const Case& k : cases) {
    Tensor img = Tensor::randn({k.N, k.D}, k.dtype, &gen) *
                 (Tensor::rand({k.N, 1}, k.dtype, &gen) * 3.0 + 0.2);  // rows of mixed length
    Tensor prompts = Tensor::randn({k.T, k.C, k.D}, k.dtype, &gen);
    if (k.uneven) {
      std::vector<double> len(static_cast<size_t>(k.T));
      for (int64_t t = 0; t < k.T; ++t) len[static_cast<size_t>(t)] = std::pow(10.0, t % 3 - 1);
      prompts = prompts * Tensor::from_vector(len, {k.T, 1, 1}, k.dtype);
    }
    const Truth want = by_loops(img, prompts);
    ZeroShotResult got = f(img, prompts);
    const double tol = k.dtype == DType::Float64 ? 1e-10 : 1e-5;
    c.shape(k.what + ": similarity", got.similarity, {k.N, k.C},
            "one row per image, one column per class: [N, C]");
    c.expect(got.similarity.dtype() == k.dtype, k.what + ": similarity dtype",
             cat_str("it is ", dtype_name(got.similarity.dtype()), " but the inputs are ",
                     dtype_name(k.dtype)));
    c.close(k.what + ": similarity", got.similarity, want.similarity, tol, tol, k.hint);
    c.shape(k.what + ": predicted", got.predicted, {k.N},
            "one class per image: argmax over the classes, dim 1 of [N, C]");
    c.expect(got.predicted.dtype() == DType::Int64, k.what + ": predicted dtype",
             cat_str("it is ", dtype_name(got.predicted.dtype()),
                     "; class indices are int64 (argmax returns int64)"));
    c.close(k.what + ": predicted", got.predicted, want.predicted, 0, 0,
            "predicted[n] = argmax over c of similarity[n][c] (dim 1)");
  }
}

namespace {
ZeroShotResult from(const Tensor& images, const Tensor& classes) {
  Tensor sim = matmul(images, classes.t());
  return {sim, argmax(sim, 1)};
}
// Uses the raw image embeddings: the predictions are right, the scores are not cosines.
ZeroShotResult raw_images(const Tensor& img, const Tensor& prompts) {
  return from(img, normalize(mean(normalize(prompts, 2), {0}), 1));
}
// Forgets to re-normalise the mean of the unit prompts.
ZeroShotResult mean_not_renormalised(const Tensor& img, const Tensor& prompts) {
  return from(normalize(img, 1), mean(normalize(prompts, 2), {0}));
}
// Averages the raw prompts first and normalises only the mean.
ZeroShotResult averages_before_normalising(const Tensor& img, const Tensor& prompts) {
  return from(normalize(img, 1), normalize(mean(prompts, {0}), 1));
}
// Right scores, argmax over the images (dim 0) instead of the classes.
ZeroShotResult argmax_wrong_dim(const Tensor& img, const Tensor& prompts) {
  ZeroShotResult r = solution::zero_shot_classify(img, prompts);
  return {r.similarity, argmax(r.similarity, 0)};
}
// Takes only the first template (no ensemble).
ZeroShotResult first_template_only(const Tensor& img, const Tensor& prompts) {
  return solution::zero_shot_classify(img, prompts.narrow(0, 0, 1));
}
}  // namespace

std::vector<Mutant> mutants_zero_shot_classify() {
  return {
      {"does not normalise the images",
       [](Checker& c) { check_zero_shot_classify(c, &raw_images); }},
      {"does not re-normalise the average",
       [](Checker& c) { check_zero_shot_classify(c, &mean_not_renormalised); }},
      {"averages before normalising",
       [](Checker& c) { check_zero_shot_classify(c, &averages_before_normalising); }},
      {"argmax over the wrong dim",
       [](Checker& c) { check_zero_shot_classify(c, &argmax_wrong_dim); }},
      {"uses the first template only",
       [](Checker& c) { check_zero_shot_classify(c, &first_template_only); }},
  };
}

}  // namespace mmgrad::exercises
