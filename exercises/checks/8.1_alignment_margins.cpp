// Checker for task 8.1: the learner's margins against lesson 08's align::alignment_test, first on
// a 2-d example small enough to check by hand, then on clustered embeddings where the own class's
// other templates, the other templates of the negatives and the template rotation all matter.
#include "08_alignment_quality/alignment.h"
#include "checks.h"

namespace mmgrad::exercises {

namespace {
// Unit rows near their class centre: centre[y] + spread * noise, normalised (as a trained
// space puts the captions and images of one class close together).
Tensor clustered(const Tensor& centres, const std::vector<int64_t>& cls, double spread,
                 Generator& gen) {
  std::vector<Tensor> rows;
  for (int64_t y : cls) rows.push_back(centres[y]);
  Tensor base = stack(rows, 0);
  return normalize(base + Tensor::randn(base.shape(), base.dtype(), &gen) * spread, 1);
}
}  // namespace

void check_alignment_margins(Checker& c, decltype(&alignment_margins) f) {
  Generator gen(81);
  struct Case {
    Tensor image, captions;
    std::vector<int64_t> labels;
    int64_t C, T;
    std::string what, hint;
  };
  std::vector<Case> cases;
  // 2 classes, 1 template, in 2-d: caption 0 = (1, 0), caption 1 = (0, 1); both images are
  // (0.8, 0.6): image 0 (class 0) has margin 0.8 - 0.6 = 0.2, image 1 (class 1) 0.6 - 0.8 = -0.2.
  cases.push_back({Tensor::from_vector({0.8, 0.6, 0.8, 0.6}, {2, 2}, DType::Float32),
                   Tensor::from_vector({1.0, 0.0, 0.0, 1.0}, {2, 2}, DType::Float32),
                   {0, 1},
                   2,
                   1,
                   "2 classes, 1 template, 2 images in 2-d",
                   "margin_i = cos(image_i, its own caption) - the largest cos with a caption of "
                   "another class; it is negative when a wrong caption wins (image 1 here)"});
  {
    const int64_t C = 3, T = 2, D = 8;
    Tensor centres = normalize(Tensor::randn({C, D}, DType::Float32, &gen), 1);
    std::vector<int64_t> cap_cls, labels = {0, 1, 2, 0, 1, 2, 2};
    for (int64_t k = 0; k < C; ++k)
      for (int64_t t = 0; t < T; ++t) cap_cls.push_back(k);
    cases.push_back({clustered(centres, labels, 0.6, gen), clustered(centres, cap_cls, 0.4, gen),
                     labels, C, T, "3 classes, 2 templates, 7 images",
                     "image i is tested with row y * T + (i mod T); its negatives are the rows of "
                     "the OTHER classes under every template (the own class's other templates "
                     "are left out)"});
  }
  {
    const int64_t C = 4, T = 3, D = 16;
    Tensor centres = normalize(Tensor::randn({C, D}, DType::Float32, &gen), 1);
    std::vector<int64_t> cap_cls, labels;
    for (int64_t k = 0; k < C; ++k)
      for (int64_t t = 0; t < T; ++t) cap_cls.push_back(k);
    for (int64_t i = 0; i < 12; ++i) labels.push_back((i * 7 + 1) % C);
    cases.push_back({clustered(centres, labels, 0.9, gen), clustered(centres, cap_cls, 0.5, gen),
                     labels, C, T, "4 classes, 3 templates, 12 images",
                     "the max runs over all (C - 1) * T negative captions, not only those of "
                     "template i mod T"});
  }
  for (const Case& k : cases) {
    const int64_t N = static_cast<int64_t>(k.labels.size());
    const align::AlignmentReport r = align::alignment_test(k.image, k.labels, k.captions, k.C, k.T);
    Tensor got = f(k.image, k.labels, k.captions, k.C, k.T);
    const std::string what = cat_str("margins for ", k.what);
    c.shape(what, got, {N}, "one margin per image: shape [N]");
    c.close(what, got, Tensor::from_vector(r.margins, {N}), 1e-5, 1e-5, k.hint);
  }
}

namespace {
// Every cosine, row-major [N, C * T].
std::vector<float> cosines(const Tensor& img, const Tensor& cap) {
  return matmul(img, cap.t()).contiguous().to_vector<float>();
}
// The common loop; `negative(y, c, u, t)` says which captions count as negatives and `match_t`
// which template the match uses; `mean_not_max` averages instead of taking the max.
template <class Neg>
Tensor margins_with(const Tensor& img, const std::vector<int64_t>& labels, const Tensor& cap,
                    int64_t C, int64_t T, Neg negative, bool rotate = true,
                    bool mean_not_max = false) {
  const std::vector<float> s = cosines(img, cap);
  const int64_t N = static_cast<int64_t>(labels.size()), M = C * T;
  std::vector<double> out;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t y = labels[i], t = rotate ? i % T : 0;
    double best = -2, total = 0, count = 0;
    for (int64_t k = 0; k < C; ++k)
      for (int64_t u = 0; u < T; ++u)
        if (negative(y, k, u, t)) {
          const double v = s[i * M + k * T + u];
          best = std::max(best, v), total += v, count += 1;
        }
    out.push_back(s[i * M + y * T + t] - (mean_not_max ? total / count : best));
  }
  return Tensor::from_vector(out, {N});
}
bool other_class(int64_t y, int64_t k, int64_t, int64_t) { return k != y; }
// Only the exact matching caption is left out: the own class's other templates become negatives.
Tensor own_templates_negative(const Tensor& img, const std::vector<int64_t>& labels,
                              const Tensor& cap, int64_t C, int64_t T) {
  return margins_with(img, labels, cap, C, T, [](int64_t y, int64_t k, int64_t u, int64_t t) {
    return !(k == y && u == t);
  });
}
// Compares with the negatives of the same template only (the lesson's second, easier number).
Tensor same_template_only(const Tensor& img, const std::vector<int64_t>& labels, const Tensor& cap,
                          int64_t C, int64_t T) {
  return margins_with(img, labels, cap, C, T,
                      [](int64_t y, int64_t k, int64_t u, int64_t t) { return k != y && u == t; });
}
// Tests every image with template 0 instead of template i mod T.
Tensor always_template_0(const Tensor& img, const std::vector<int64_t>& labels, const Tensor& cap,
                         int64_t C, int64_t T) {
  return margins_with(img, labels, cap, C, T, &other_class, false);
}
// Subtracts the mean negative similarity instead of the best one.
Tensor mean_negative(const Tensor& img, const std::vector<int64_t>& labels, const Tensor& cap,
                     int64_t C, int64_t T) {
  return margins_with(img, labels, cap, C, T, &other_class, true, true);
}
}  // namespace

std::vector<Mutant> mutants_alignment_margins() {
  return {
      {"counts the own class's other templates as negatives",
       [](Checker& c) { check_alignment_margins(c, &own_templates_negative); }},
      {"compares with the negatives of the same template only",
       [](Checker& c) { check_alignment_margins(c, &same_template_only); }},
      {"tests every image with template 0",
       [](Checker& c) { check_alignment_margins(c, &always_template_0); }},
      {"subtracts the mean negative instead of the best",
       [](Checker& c) { check_alignment_margins(c, &mean_negative); }},
  };
}

}  // namespace mmgrad::exercises
