// VectorQuantizer: turns continuous vectors into discrete tokens (the "VQ" of VQ-VAE, van den
// Oord et al. 2017), the tokenizer of VideoBERT, DALL-E 1 and most image/video generators.
//
// A codebook holds K learned vectors e_0 .. e_{K-1}, each of size D. Every input vector z (the
// last dimension of an encoder's output, e.g. one per video patch) is replaced by its NEAREST
// code:
//
//   k*(z) = argmin_k ||z - e_k||^2 = argmin_k ( ||z||^2 - 2 z.e_k + ||e_k||^2 )     (the token)
//   q(z)  = e_{k*(z)}                                                     (its vector)
//
// argmin has no useful gradient (it is piecewise constant), so three tricks make it trainable:
//
//   1. The straight-through estimator. The decoder gets   z_q = z + sg(q - z)   where sg() is
//      stop-gradient (detach). Its value is q (sg changes no value), but its gradient with
//      respect to z is the identity: the decoder's gradient is copied straight through the
//      quantizer to the encoder, as if quantization were not there. Without it, the decoder
//      sees q = e_k, whose only parents are codebook rows: NO gradient of the reconstruction
//      loss reaches the encoder (exactly zero), and the encoder never learns what to encode.
//   2. The codebook loss  ||sg(z) - e||^2  moves each chosen code towards the vectors that chose
//      it (online k-means). It is the only loss that trains the codebook.
//   3. The commitment loss  ||z - sg(e)||^2  keeps the encoder's outputs near their codes, so
//      they do not drift far away and make the nearest code meaningless. Weighted by beta
//      (0.25 in the paper): loss = codebook_loss + beta * commitment_loss.
//   Both are means over all elements (PyTorch's F.mse_loss), as in the usual implementations.
//
// Codebook collapse. A code that no vector picks gets no codebook gradient and stays where it is
// forever ("dead"); with a poor initialisation (e.g. all codes in a tiny ball, far from the
// data) one or a few codes win everything. Two measures show it: the number of codes used and
// the PERPLEXITY of the code usage, exp(entropy) = exp(-sum_k p_k log p_k) with p_k the fraction
// of vectors that picked code k. Perplexity is K when every code is used equally and 1 when one
// code takes all. restart_dead_codes() is the classic fix: move every dead code onto a randomly
// chosen encoder output, where vectors are, so it starts winning some.
//
// Composed, no kernel of its own: the nearest-code search is matmul + argmin under no-grad, the
// lookup is embedding(), the losses are mse_loss on detached tensors. Every piece already has its
// CPU and CUDA kernels and its backward, so the quantizer runs on every device.
#pragma once

#include <cstdint>
#include <string>

#include "mmgrad/nn/module.h"

namespace mmgrad::nn {

// What VectorQuantizer::forward returns.
struct VQOutput {
  Tensor quantized;        // z's shape: z + sg(q - z) (straight-through) or q (without)
  Tensor indices;          // int64, z's shape without the last dim: the chosen code of each z
  Tensor codebook_loss;    // 0-d: mean (sg(z) - q)^2, trains the codebook
  Tensor commitment_loss;  // 0-d: mean (z - sg(q))^2, keeps the encoder near its codes
  Tensor loss;             // 0-d: codebook_loss + beta * commitment_loss
  double perplexity = 0;   // exp(entropy of the code usage in this batch), 1 .. K
  int64_t codes_used = 0;  // how many distinct codes this batch picked
};

// The quantizer as plain functions of (z, codebook [K, D]), what the module below calls: usable
// with any codebook tensor (gradcheck feeds float64 leaves through them).
// The nearest code of every vector of z [..., D] (no gradient): int64 [...].
Tensor nearest_code(const Tensor& z, const Tensor& codebook);
// Quantizes z [..., D] with the codebook: every field of VQOutput (see above).
VQOutput vector_quantize(const Tensor& z, const Tensor& codebook, double beta = 0.25,
                         bool straight_through = true);

class VectorQuantizer : public Module {
 public:
  // Codebook weight [num_embeddings, embedding_dim] ~ U(-1/K, 1/K) (the VQ-VAE reference
  // implementation's init: small, all codes near 0; it invites collapse, see above).
  VectorQuantizer(int64_t num_embeddings, int64_t embedding_dim, double beta = 0.25,
                  bool straight_through = true);

  // z [..., embedding_dim] (channels LAST: permute a conv's [N, D, T, H, W] to [N, T, H, W, D]
  // first), floating, on the codebook's device and dtype. Empty z is an error (no usage).
  VQOutput quantize(const Tensor& z);
  // The straight-through quantized tensor only (Module's single-input forward).
  Tensor forward(const Tensor& z) override { return quantize(z).quantized; }

  // The nearest code of every vector (no gradient): int64 [...] for z [..., D].
  Tensor nearest(const Tensor& z) const;
  // The code vectors of int64 tokens of any shape: [..., D] (differentiable in the codebook).
  Tensor lookup(const Tensor& indices) const;

  // How many of z's vectors pick each code: int64 [K] on the CPU.
  Tensor code_counts(const Tensor& z) const;
  // Perplexity of a usage histogram: exp(-sum p log p), p = counts / sum(counts).
  static double perplexity_of(const Tensor& counts);

  // The dead-code restart: codes that fewer than min_count of z's vectors pick are moved onto
  // distinct randomly chosen vectors of z (detached; the default generator draws them, so
  // manual_seed makes it reproducible). z [..., D], typically the encoder outputs of a few
  // batches. Returns the number of codes restarted (0 when none is dead). No gradient.
  int64_t restart_dead_codes(const Tensor& z, int64_t min_count = 1);

  std::string name() const override { return "VectorQuantizer"; }
  std::string extra_repr() const override;

  int64_t num_embeddings, embedding_dim;
  double beta;
  bool straight_through;  // false: the demonstration that the encoder then gets no gradient
  Tensor weight;          // the codebook [K, D]
};

}  // namespace mmgrad::nn
