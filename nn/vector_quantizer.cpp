#include "mmgrad/nn/vector_quantizer.h"

#include <cmath>
#include <vector>

#include "mmgrad/autograd/grad_mode.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/ops/elementwise.h"
#include "mmgrad/ops/index.h"
#include "mmgrad/ops/loss.h"
#include "mmgrad/ops/matmul.h"
#include "mmgrad/ops/reduce.h"
#include "mmgrad/ops/sort.h"

namespace mmgrad::nn {

VectorQuantizer::VectorQuantizer(int64_t num_embeddings, int64_t embedding_dim, double beta,
                                 bool straight_through)
    : num_embeddings(num_embeddings),
      embedding_dim(embedding_dim),
      beta(beta),
      straight_through(straight_through) {
  MMGRAD_CHECK(num_embeddings > 0 && embedding_dim > 0,
               "VectorQuantizer: num_embeddings and embedding_dim must be positive, got ",
               num_embeddings, " and ", embedding_dim);
  MMGRAD_CHECK(std::isfinite(beta) && beta >= 0, "VectorQuantizer: beta ", beta,
               " (the commitment weight) must be finite and >= 0");
  weight = register_parameter("weight", Tensor::empty({num_embeddings, embedding_dim}));
  const double a = 1.0 / static_cast<double>(num_embeddings);
  init::uniform_(weight, -a, a);
}

std::string VectorQuantizer::extra_repr() const {
  return cat_str(num_embeddings, ", ", embedding_dim, ", beta=", beta,
                 ", straight_through=", straight_through ? "true" : "false");
}

namespace {

// z [..., D] and codebook [K, D]: same floating dtype and device, D matching, z not empty.
void check_pair(const Tensor& z, const Tensor& codebook, const char* fn) {
  MMGRAD_CHECK(codebook.defined() && codebook.dim() == 2 && codebook.size(0) > 0 &&
                   codebook.size(1) > 0 && codebook.is_floating_point(),
               fn, ": codebook is ", codebook.defined() ? describe(codebook) : "undefined",
               "; expected a floating [K, D] tensor with K, D > 0");
  const int64_t D = codebook.size(1);
  MMGRAD_CHECK(z.defined(), fn, ": z is an undefined tensor");
  MMGRAD_CHECK(z.dim() >= 1 && z.size(-1) == D, fn, ": z is ", describe(z), "; expected [..., ", D,
               "] (channels last: the code vectors are the LAST dim)");
  MMGRAD_CHECK(z.dtype() == codebook.dtype(), fn, ": z is ", describe(z),
               "; expected the codebook's dtype ", dtype_name(codebook.dtype()));
  MMGRAD_CHECK(z.device() == codebook.device(), fn, ": z is on ", device_name(z.device()),
               " but the codebook is on ", device_name(codebook.device()));
  MMGRAD_CHECK(z.numel() > 0, fn, ": z is ", describe(z),
               "; expected at least one vector to quantize");
}

}  // namespace

Tensor nearest_code(const Tensor& z, const Tensor& codebook) {
  check_pair(z, codebook, "VectorQuantizer (nearest_code)");
  NoGradGuard no_grad;
  const int64_t K = codebook.size(0), D = codebook.size(1);
  Shape out_shape = z.shape();
  out_shape.erase(out_shape.size() - 1);   // [..., D] -> [...]
  const Tensor flat = z.reshape({-1, D});  // [N, D]
  // ||z - e_k||^2 = ||z||^2 - 2 z.e_k + ||e_k||^2. The first term is the same for every k, so
  // the argmin needs only ||e_k||^2 - 2 z.e_k: one [N, D] x [D, K] matmul, not N*K differences.
  const Tensor score =
      codebook.square().sum({1}).reshape({1, K}) - 2.0 * matmul(flat, codebook.t());  // [N, K]
  return argmin(score, 1).reshape(out_shape);  // the first code on a tie
}

VQOutput vector_quantize(const Tensor& z, const Tensor& codebook, double beta,
                         bool straight_through) {
  check_pair(z, codebook, "VectorQuantizer");
  MMGRAD_CHECK(std::isfinite(beta) && beta >= 0, "VectorQuantizer: beta ", beta,
               " (the commitment weight) must be finite and >= 0");
  VQOutput out;
  out.indices = nearest_code(z, codebook);
  const Tensor q = embedding(codebook, out.indices);  // [..., D]: e_k*, a function of the codebook
  // The two losses differ only in which side is frozen (sg = detach).
  out.codebook_loss = mse_loss(q, z.detach());    // moves the codes towards the z's
  out.commitment_loss = mse_loss(z, q.detach());  // moves the z's towards their codes
  out.loss = out.codebook_loss + beta * out.commitment_loss;
  // Straight-through: value q, gradient d(z_q)/dz = identity. Without it the decoder reads q,
  // whose gradient ends in the codebook: the encoder gets nothing from the reconstruction.
  out.quantized = straight_through ? z + (q - z).detach() : q;
  {
    NoGradGuard no_grad;
    const Tensor counts =
        one_hot(out.indices.reshape({-1}), codebook.size(0), kFloat64).sum({0}).cpu();
    out.perplexity = VectorQuantizer::perplexity_of(counts);
    for (double c : counts.to_vector<double>()) out.codes_used += c > 0;
  }
  return out;
}

VQOutput VectorQuantizer::quantize(const Tensor& z) {
  return vector_quantize(z, weight, beta, straight_through);
}

Tensor VectorQuantizer::nearest(const Tensor& z) const { return nearest_code(z, weight); }

Tensor VectorQuantizer::lookup(const Tensor& indices) const {
  MMGRAD_CHECK(indices.defined() && indices.dtype() == kInt64, label(), ".lookup: indices are ",
               indices.defined() ? describe(indices) : std::string("undefined"),
               "; expected int64 codes in [0, ", num_embeddings, ")");
  return embedding(weight, indices);  // checks the range, gradient flows into the codebook rows
}

Tensor VectorQuantizer::code_counts(const Tensor& z) const {
  const Tensor idx = nearest(z).reshape({-1});
  NoGradGuard no_grad;
  return one_hot(idx, num_embeddings, kInt64).sum({0}).cpu();
}

double VectorQuantizer::perplexity_of(const Tensor& counts) {
  MMGRAD_CHECK(counts.defined() && counts.dim() == 1 && counts.numel() > 0,
               "VectorQuantizer::perplexity_of: counts are ",
               counts.defined() ? describe(counts) : std::string("undefined"),
               "; expected a 1-D histogram [K]");
  const std::vector<double> c = counts.to_vector<double>();
  double total = 0;
  for (double v : c) {
    MMGRAD_CHECK(v >= 0 && std::isfinite(v), "VectorQuantizer::perplexity_of: a count is ", v,
                 "; expected counts >= 0");
    total += v;
  }
  MMGRAD_CHECK(total > 0, "VectorQuantizer::perplexity_of: all ", c.size(),
               " counts are 0; expected at least one vector counted");
  double entropy = 0;  // -sum p log p, with 0 log 0 = 0
  for (double v : c)
    if (v > 0) entropy -= (v / total) * std::log(v / total);
  return std::exp(entropy);
}

int64_t VectorQuantizer::restart_dead_codes(const Tensor& z, int64_t min_count) {
  check_pair(z, weight, "VectorQuantizer.restart_dead_codes");
  MMGRAD_CHECK(min_count >= 1, label(), ".restart_dead_codes: min_count ", min_count,
               "; expected >= 1 (a code picked fewer times than this is dead)");
  const std::vector<int64_t> counts = code_counts(z).to_vector<int64_t>();
  std::vector<int64_t> dead;
  for (int64_t k = 0; k < num_embeddings; ++k)
    if (counts[static_cast<size_t>(k)] < min_count) dead.push_back(k);
  if (dead.empty()) return 0;
  NoGradGuard no_grad;
  const Tensor flat = z.detach().reshape({-1, embedding_dim});
  const int64_t n = flat.size(0);
  // Distinct random vectors: the first |dead| of a random permutation of z's rows (a sort of
  // uniform keys). With fewer vectors than dead codes, the permutation repeats.
  const std::vector<int64_t> perm =
      sort(Tensor::rand({n}, TensorOptions(kFloat64))).indices.to_vector<int64_t>();
  std::vector<int64_t> pick(dead.size());
  for (size_t i = 0; i < dead.size(); ++i) pick[i] = perm[i % perm.size()];
  const Tensor src = index_select(flat, 0, Tensor::from_vector(pick).to(flat.device()));
  for (size_t i = 0; i < dead.size(); ++i)
    weight.select(0, dead[i]).copy_(src.select(0, static_cast<int64_t>(i)));
  return static_cast<int64_t>(dead.size());
}

}  // namespace mmgrad::nn
