#include "13_blip/blip.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "common/lesson.h"
#include "mmgrad/core/philox.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/losses.h"
#include "mmgrad/optim/lr_scheduler.h"
#include "mmgrad/optim/optim.h"

namespace mmgrad::lesson::blip {

using data::Tokenizer;

namespace {

nn::TransformerLayerOptions layer_options(const BlipOptions& o) {
  nn::TransformerLayerOptions l;
  l.d_model = o.d_model;
  l.nhead = o.heads;
  l.dim_feedforward = 2 * o.d_model;
  l.dropout = 0.0;
  l.activation = nn::Activation::GELU;
  l.norm_first = true;  // pre-norm, with a final LayerNorm (GPT-2 / BERT-style small stacks)
  return l;
}

// bool [B, T]: true where the caption is padding (MultiheadAttention's key_padding_mask).
Tensor padding_mask(const Tensor& ids) { return ids.eq(static_cast<double>(Tokenizer::kPad)); }

Tensor ids_tensor(const std::vector<std::vector<int64_t>>& ids, int64_t from, int64_t n,
                  const std::vector<int64_t>* pick = nullptr) {
  std::vector<int64_t> flat;
  flat.reserve(static_cast<size_t>(n * kText));
  for (int64_t i = 0; i < n; ++i) {
    const auto& s = ids[pick ? (*pick)[from + i] : from + i];
    flat.insert(flat.end(), s.begin(), s.end());
  }
  return Tensor::from_vector(flat, {n, kText});
}

}  // namespace

Blip::Blip(const BlipOptions& o) : opt(o) {
  MMGRAD_CHECK(o.vocab > 4 && o.d_model > 0 && o.d_model % o.heads == 0 && o.channels > 0 &&
                   o.layers > 0 && o.embed_dim > 0,
               "Blip: need vocab > 4, d_model a positive multiple of heads (got ", o.d_model, ", ",
               o.heads, "), channels, layers, embed_dim > 0");
  // The image encoder: lesson 09's CNN. A full-resolution 3x3 convolution (small shapes are 6-8
  // pixels wide), then three stride-2 convolutions 32 -> 16 -> 8 -> 4: a 4x4 grid of `features`
  // features, each cell seeing a 17x17 window around its 8x8 patch.
  const int64_t C = o.channels, F = o.features;
  cnn = register_module(
      "cnn", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                 std::make_shared<nn::Conv2d>(3, C, 3, 1, 1), std::make_shared<nn::ReLU>(),
                 std::make_shared<nn::Conv2d>(C, F, 3, 2, 1), std::make_shared<nn::ReLU>(),
                 std::make_shared<nn::Conv2d>(F, F, 3, 2, 1), std::make_shared<nn::ReLU>(),
                 std::make_shared<nn::Conv2d>(F, F, 3, 2, 1), std::make_shared<nn::ReLU>()}));
  for (const auto& m : *cnn)
    if (auto conv = std::dynamic_pointer_cast<nn::Conv2d>(m)) {
      nn::init::kaiming_uniform_(conv->weight, 0.0, nn::init::FanMode::FanIn, "relu");
      nn::init::zeros_(conv->bias);
    }
  token_norm = register_module("token_norm", std::make_shared<nn::LayerNorm>(F));
  to_tokens = register_module("to_tokens", std::make_shared<nn::Linear>(F, o.d_model));
  image_proj = register_module("image_proj", std::make_shared<nn::Linear>(o.d_model, o.embed_dim));
  // Shared by the three text modules.
  tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(o.vocab, o.d_model));
  pos_emb = register_module("pos_emb", std::make_shared<nn::Embedding>(kText, o.d_model));
  nn::init::normal_(tok_emb->weight, 0.0, 0.02);
  nn::init::normal_(pos_emb->weight, 0.0, 0.02);
  const nn::TransformerLayerOptions l = layer_options(o);
  // ITC: self-attention only (BERT-like, bidirectional): the text alone.
  text_encoder =
      register_module("text_encoder", std::make_shared<nn::TransformerEncoder>(l, o.layers, true));
  text_proj = register_module("text_proj", std::make_shared<nn::Linear>(o.d_model, o.embed_dim));
  // ITM: nn::TransformerDecoderLayer = self-attention, cross-attention to a memory, feed-forward.
  // Called WITHOUT the causal mask it is BLIP's "image-grounded text encoder": every word sees
  // every word, and every layer looks at the image tokens.
  itm_encoder =
      register_module("itm_encoder", std::make_shared<nn::TransformerDecoder>(l, o.layers, true));
  itm_head = register_module("itm_head", std::make_shared<nn::Linear>(o.d_model, 2));
  // LM: the same kind of layer WITH the causal mask: BLIP's "image-grounded text decoder".
  lm_decoder =
      register_module("lm_decoder", std::make_shared<nn::TransformerDecoder>(l, o.layers, true));
  lm_head = register_module("lm_head", std::make_shared<nn::Linear>(o.d_model, o.vocab));
  logit_scale = register_parameter("logit_scale", Tensor::scalar(std::log(1.0 / 0.07)));
}

Tensor Blip::image_tokens(const Tensor& images) {
  Tensor f = cnn->forward(images);              // [B, F, 4, 4]
  Tensor cells = f.flatten(2).transpose(1, 2);  // [B, 16, F]: one row per grid cell
  return to_tokens->forward(token_norm->forward(cells));
}

Tensor Blip::image_embed(const Tensor& tokens) {
  return image_proj->forward(tokens.mean({1}));  // average of the 16 tokens
}

Tensor Blip::embed_text(const Tensor& ids) {
  const int64_t T = ids.size(1);
  return tok_emb->forward(ids) + pos_emb->forward(Tensor::arange(T).to(ids.device()));
}

Tensor Blip::text_embed(const Tensor& ids) {
  Tensor h = text_encoder->forward(embed_text(ids), {}, padding_mask(ids));
  return text_proj->forward(h.select(1, 0));  // the [bos] position summarises the caption
}

Tensor Blip::itm_logits(const Tensor& ids, const Tensor& tokens) {
  Tensor pad = padding_mask(ids);
  Tensor h = itm_encoder->forward(embed_text(ids), tokens, {}, {}, pad);
  // The mean over the caption's positions (padding excluded), not BLIP's [CLS] output: in one
  // layer each word looks up its own evidence in the image ("red" attends to red pixels), and
  // the average collects the verdicts. [CLS] would need a second layer to gather them.
  Tensor keep = logical_not(pad).to(h.dtype()).unsqueeze(2);  // [B, T, 1]
  Tensor pooled = (h * keep).sum({1}) / keep.sum({1});
  return itm_head->forward(pooled);
}

Tensor Blip::lm_logits(const Tensor& ids, const Tensor& tokens) {
  Tensor h = lm_decoder->forward(embed_text(ids), tokens, {}, {}, {}, {}, /*tgt_is_causal=*/true);
  return lm_head->forward(h);
}

std::vector<int64_t> caption_ids(const Tokenizer& tok, const std::string& caption) {
  std::vector<int64_t> ids = {Tokenizer::kBos};
  for (int64_t w : tok.encode(caption)) ids.push_back(w);
  ids.push_back(Tokenizer::kEos);
  MMGRAD_CHECK(static_cast<int64_t>(ids.size()) <= kText, "13_blip: caption '", caption, "' needs ",
               ids.size(), " positions, more than ", kText);
  ids.resize(kText, Tokenizer::kPad);
  return ids;
}

// ---- hard negatives for ITM ------------------------------------------------------------------
// For row i of a [B, B] similarity matrix: a column j != i drawn with probability proportional
// to exp(sim_ij) (softmax over the row), never a column whose caption is the same as row i's
// (that "negative" would be a positive: same text). The more an ITC-similar caption looks like a
// match, the likelier it is picked: the ITM head is trained on the pairs ITC finds hardest.
static int64_t sample_negative(const float* sim, int64_t i, int64_t B,
                               const std::vector<bool>& same, double u) {
  std::vector<double> w(static_cast<size_t>(B), 0.0);
  float mx = -1e30f;
  for (int64_t j = 0; j < B; ++j)
    if (!same[static_cast<size_t>(i * B + j)]) mx = std::max(mx, sim[j]);
  double total = 0;
  for (int64_t j = 0; j < B; ++j)
    if (!same[static_cast<size_t>(i * B + j)]) total += w[j] = std::exp(sim[j] - mx);
  if (total <= 0) return (i + 1) % B;  // every caption in the batch is the same: any other one
  double r = u * total;
  for (int64_t j = 0; j < B; ++j)
    if (w[j] > 0 && (r -= w[j]) < 0) return j;
  for (int64_t j = B - 1; j >= 0; --j)
    if (w[j] > 0) return j;
  return (i + 1) % B;
}

TrainLog train(Blip& model, const PairSet& data, const TrainOptions& o, const std::string& label,
               Device device) {
  MMGRAD_CHECK(data.size() >= o.batch && o.batch >= 2,
               "13_blip: training needs a batch of at "
               "least 2 and at most the ",
               data.size(), " pairs; got --batch ", o.batch);
  MMGRAD_CHECK(o.steps > 0 && o.lr > 0 && o.neg_temperature > 0,
               "13_blip: training needs "
               "steps > 0, lr > 0 and a negative-sampling temperature > 0; got ",
               o.steps, ", ", o.lr, ", ", o.neg_temperature);
  TrainLog log;
  model.to(device);
  model.train();
  optim::AdamW opt(model.parameters(), {.lr = o.lr, .weight_decay = 0.01});
  optim::CosineWithWarmup sched(opt, std::min<int64_t>(30, o.steps / 10), o.steps);
  const int64_t N = data.size(), B = o.batch;
  std::vector<int64_t> order(static_cast<size_t>(N));
  std::iota(order.begin(), order.end(), 0);
  int64_t pos = N;  // start with a shuffle
  uint64_t epoch = 0, counter = 0;
  double s_itc = 0, s_itm = 0, s_lm = 0;
  int64_t window = 0;
  const double t0 = elapsed_seconds();
  for (int64_t step = 0; step < o.steps; ++step) {
    if (pos + B > N) {  // a new epoch: Fisher-Yates with Philox uniforms
      for (int64_t i = N - 1; i > 0; --i) {
        const auto j = static_cast<int64_t>(philox::uniform(counter++, o.seed + 977 * ++epoch) *
                                            static_cast<double>(i + 1));
        std::swap(order[i], order[std::min(j, i)]);
      }
      pos = 0;
    }
    std::vector<int64_t> img_idx(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) img_idx[b] = data.image_of[order[pos + b]];
    Tensor images = index_select(data.images, 0, Tensor::from_vector(img_idx)).to(device);
    Tensor ids = ids_tensor(data.ids, pos, B, &order).to(device);
    std::vector<bool> same(static_cast<size_t>(B * B));
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < B; ++j)
        same[i * B + j] = data.ids[order[pos + i]] == data.ids[order[pos + j]];
    pos += B;

    Tensor tokens = model.image_tokens(images);  // [B, 16, d], shared by the three objectives
    // ITC.
    nn::ClipLossResult c =
        nn::clip_loss(model.image_embed(tokens), model.text_embed(ids), model.logit_scale);
    // ITM: B positives, then for each image a hard negative caption and for each caption a hard
    // negative image, picked from the ITC similarities of this batch (no gradient through the
    // sampling).
    std::vector<float> sim = c.logits_per_image.detach().cpu().to_vector<float>();
    // The sampling weights: exp(cosine / neg_temperature) (logits_per_image holds the cosines
    // times the ITC scale exp(logit_scale)).
    const double scale = std::exp(std::min(model.logit_scale.item(), std::log(100.0)));
    for (float& x : sim) x = static_cast<float>(x / scale / o.neg_temperature);
    std::vector<float> sim_t(sim.size());
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < B; ++j) sim_t[j * B + i] = sim[i * B + j];
    std::vector<int64_t> neg_text(static_cast<size_t>(B)), neg_image(static_cast<size_t>(B));
    for (int64_t i = 0; i < B; ++i) {
      neg_text[i] = sample_negative(sim.data() + i * B, i, B, same,
                                    philox::uniform(counter++, o.seed ^ 0x17e5ULL));
      neg_image[i] = sample_negative(sim_t.data() + i * B, i, B, same,
                                     philox::uniform(counter++, o.seed ^ 0x17e5ULL));
    }
    std::vector<int64_t> itm_img(static_cast<size_t>(3 * B)), itm_txt(static_cast<size_t>(3 * B)),
        itm_y(static_cast<size_t>(3 * B), 0);
    for (int64_t i = 0; i < B; ++i) {
      itm_img[i] = i, itm_txt[i] = i, itm_y[i] = 1;               // the true pair
      itm_img[B + i] = i, itm_txt[B + i] = neg_text[i];           // image, hard caption
      itm_img[2 * B + i] = neg_image[i], itm_txt[2 * B + i] = i;  // hard image, caption
    }
    Tensor itm_tokens = index_select(tokens, 0, Tensor::from_vector(itm_img).to(device));
    Tensor itm_ids = index_select(ids, 0, Tensor::from_vector(itm_txt).to(device));
    Tensor itm =
        cross_entropy(model.itm_logits(itm_ids, itm_tokens), Tensor::from_vector(itm_y).to(device));
    // LM: position j of <bos> w_1 ... predicts token j + 1; padding is not predicted.
    Tensor inputs = ids.narrow(1, 0, kText - 1);
    std::vector<int64_t> tg;
    for (int64_t b = 0; b < B; ++b) {
      const auto& s = data.ids[order[pos - B + b]];
      for (int64_t j = 1; j < kText; ++j) tg.push_back(s[j] == Tokenizer::kPad ? kIgnore : s[j]);
    }
    Tensor targets = Tensor::from_vector(tg, {B, kText - 1}).to(device);
    Tensor logits = model.lm_logits(inputs, tokens);
    Tensor lm = cross_entropy(logits.reshape({-1, logits.size(2)}), targets.reshape({-1}),
                              {.ignore_index = kIgnore});
    Tensor loss = c.loss + itm + lm;
    opt.zero_grad();
    loss.backward();
    optim::clip_grad_norm_(model.parameters(), 1.0);
    opt.step();
    sched.step();
    {
      NoGradGuard g;  // CLIP's cap on the logit scale
      model.logit_scale.copy_(model.logit_scale.clamp(0.0, std::log(100.0)));
    }
    s_itc += c.loss.item(), s_itm += itm.item(), s_lm += lm.item();
    ++window;
    if ((step + 1) % o.log_every == 0 || step + 1 == o.steps) {
      log.step.push_back(static_cast<double>(step + 1));
      log.itc.push_back(s_itc / window);
      log.itm.push_back(s_itm / window);
      log.lm.push_back(s_lm / window);
      print("  {} step {:4d}  ITC {:.3f}  ITM {:.3f}  LM {:.3f}  {}", label, step + 1,
            log.itc.back(), log.itm.back(), log.lm.back(),
            progress_time(step + 1, o.steps, elapsed_seconds() - t0));
      std::fflush(stdout);
      s_itc = s_itm = s_lm = 0;
      window = 0;
    }
  }
  log.seconds = elapsed_seconds() - t0;
  model.eval();
  return log;
}

Tensor embed_images(Blip& model, const Tensor& images, Device device) {
  NoGradGuard g;
  std::vector<Tensor> out;
  for (int64_t s = 0; s < images.size(0); s += 500) {
    const int64_t n = std::min<int64_t>(500, images.size(0) - s);
    out.push_back(
        normalize(model.image_embed(model.image_tokens(images.narrow(0, s, n).to(device))), 1)
            .cpu());
  }
  return cat(out, 0);
}

Tensor embed_texts(Blip& model, const std::vector<std::vector<int64_t>>& ids, Device device) {
  NoGradGuard g;
  std::vector<Tensor> out;
  const auto n_all = static_cast<int64_t>(ids.size());
  for (int64_t s = 0; s < n_all; s += 500) {
    const int64_t n = std::min<int64_t>(500, n_all - s);
    out.push_back(normalize(model.text_embed(ids_tensor(ids, s, n).to(device)), 1).cpu());
  }
  return cat(out, 0);
}

std::vector<double> itm_scores(Blip& model, const Tensor& images,
                               const std::vector<int64_t>& image_of,
                               const std::vector<std::vector<int64_t>>& ids, Device device) {
  NoGradGuard g;
  std::vector<double> out;
  const auto n_all = static_cast<int64_t>(ids.size());
  for (int64_t s = 0; s < n_all; s += 500) {
    const int64_t n = std::min<int64_t>(500, n_all - s);
    std::vector<int64_t> img(image_of.begin() + s, image_of.begin() + s + n);
    Tensor tokens =
        model.image_tokens(index_select(images, 0, Tensor::from_vector(img)).to(device));
    Tensor p = softmax(model.itm_logits(ids_tensor(ids, s, n).to(device), tokens), 1).select(1, 1);
    for (float v : p.cpu().to_vector<float>()) out.push_back(v);
  }
  return out;
}

// Greedy decoding without a KV cache: each new word reruns the decoder over the (short) prefix.
std::vector<std::vector<int64_t>> generate(Blip& model, const Tensor& images, Device device) {
  NoGradGuard g;
  const int64_t N = images.size(0), chunk = 500;
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(N));
  for (int64_t c0 = 0; c0 < N; c0 += chunk) {
    const int64_t B = std::min(chunk, N - c0);
    Tensor tokens = model.image_tokens(images.narrow(0, c0, B).to(device));
    std::vector<std::vector<int64_t>> seq(static_cast<size_t>(B), {Tokenizer::kBos});
    std::vector<bool> done(static_cast<size_t>(B), false);
    for (int64_t T = 1; T < kText; ++T) {
      std::vector<int64_t> flat;
      for (const auto& s : seq) flat.insert(flat.end(), s.begin(), s.end());
      Tensor ids = Tensor::from_vector(flat, {B, T}).to(device);
      Tensor next = model.lm_logits(ids, tokens).select(1, T - 1).argmax(1).cpu();
      std::vector<int64_t> nx = next.to_vector<int64_t>();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t w = done[b] ? Tokenizer::kPad : nx[b];
        if (w == Tokenizer::kEos) done[b] = true;
        seq[b].push_back(w);
      }
      if (std::all_of(done.begin(), done.end(), [](bool x) { return x; })) break;
    }
    for (int64_t b = 0; b < B; ++b) out[c0 + b] = Tokenizer::strip_special(seq[b]);
  }
  return out;
}

}  // namespace mmgrad::lesson::blip
