// lessons/04_mini_clip/clip: the mini CLIP the lessons 04-08 share. Captions and templates, the two
// encoders (padding masked out, EOS pooling, bad inputs), the class-target loss against CLIP's
// loss and a gradient check, a short training run, batched encoding, prompt ensembles, and the
// checkpoint cache (match, other config, missing, truncated, foreign files).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/checkpoint.h"

using namespace mmgrad;

namespace {

// A tiny model over the Fashion-MNIST caption vocabulary (fast to build and run).
clip::FmnistClipConfig tiny_config(uint64_t seed = 3) {
  clip::FmnistClipConfig c;
  c.image.channels = {4, 8};
  c.image.pool_size = 2;
  c.image.embed_dim = 8;
  c.text.width = 8;
  c.text.embed_dim = 8;
  c.text.heads = 2;
  c.text.layers = 1;
  c.text.dropout = 0.0;
  c.train.steps = 3;
  c.train.batch_size = 8;
  c.train.seed = seed;
  return c;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return max(abs(a.to(kFloat64) - b.to(kFloat64))).item();
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("mmgrad_clip_test_" + name)).string();
}

}  // namespace

TEST_CASE("clip captions: templates, articles, the caption bank and its vocabulary") {
  CHECK(clip::fill_template("a photo of a {}", "ankle boot") == "a photo of an ankle boot");
  CHECK(clip::fill_template("a photo of a {}", "sneaker") == "a photo of a sneaker");
  CHECK(clip::fill_template("a small image of the {}", "ankle boot") ==
        "a small image of the ankle boot");
  CHECK(clip::fill_template("{} in a photo", "bag") == "bag in a photo");
  // "a" must be a word of its own: "a black-and-white picture of a {}" ends with " a "
  CHECK(clip::fill_template("a black-and-white picture of a {}", "ankle boot") ==
        "a black-and-white picture of an ankle boot");
  CHECK_THROWS_WITH_AS(clip::fill_template("no placeholder", "bag"),
                       doctest::Contains("fill_template"), Error);

  CHECK(clip::caption_templates().size() >= 5);
  CHECK(clip::ensemble_template_ids().size() == 5);
  clip::CaptionBank b = clip::make_fmnist_captions();
  CHECK(b.num_classes() == 10);
  CHECK(b.tokens.shape() == Shape{10 * b.num_templates(), clip::kCaptionLen});
  CHECK(b.text(9, 0) == "a photo of an ankle boot");
  // every caption is [BOS] words [EOS] [PAD]... and decodes back to its text
  std::vector<int64_t> ids = b.tokens.to_vector<int64_t>();
  for (int64_t r = 0; r < b.tokens.size(0); ++r) {
    CHECK(ids[r * b.max_len] == data::Tokenizer::kBos);
    bool has_eos = false;
    for (int64_t t = 0; t < b.max_len; ++t)
      has_eos |= ids[r * b.max_len + t] == data::Tokenizer::kEos;
    CHECK(has_eos);
    CHECK(b.tokenizer.decode(b.tokens[r]) ==
          b.tokenizer.decode(b.encode({b.text(r / b.num_templates(), r % b.num_templates())})[0]));
  }
  // class_prompts(t) is template t for every class, in class order
  CHECK(max_abs_diff(b.class_prompts(2)[7], b.tokens[b.row(7, 2)]) == 0.0);
  // the vocabulary is a function of the captions alone
  clip::CaptionBank b2 = clip::make_fmnist_captions();
  CHECK(b2.tokenizer.vocab_size() == b.tokenizer.vocab_size());
  CHECK(max_abs_diff(b2.tokens, b.tokens) == 0.0);
  CHECK_THROWS_WITH_AS(clip::make_caption_bank({"bag"}, {"a very long {} caption"}, 4),
                       doctest::Contains("make_caption_bank"), Error);
}

TEST_CASE("clip encoders: padding is invisible, EOS pooling, shapes and bad inputs") {
  manual_seed(11);
  clip::CaptionBank b = clip::make_fmnist_captions();
  clip::TextEncoderOptions o;
  o.vocab_size = b.tokenizer.vocab_size();
  o.width = 8;
  o.embed_dim = 6;
  o.heads = 2;
  o.layers = 2;
  o.dropout = 0.0;
  o.max_len = 16;
  clip::TextEncoder enc(o);
  enc.eval();
  // The same caption padded to 16 or to 9 tokens: masked attention and the masked mean make
  // the padding irrelevant.
  Tensor long_pad = b.tokenizer.encode_batch({"a photo of a bag"}, 16, true, true);
  Tensor short_pad = b.tokenizer.encode_batch({"a photo of a bag"}, 9, true, true);
  Tensor e16 = enc.forward(long_pad), e9 = enc.forward(short_pad);
  CHECK(e16.shape() == Shape{1, 6});
  CHECK(max_abs_diff(e16, e9) < 1e-5);

  // EOS pooling: the state at EOS; tokens after it (padding) change nothing, the words before
  // it do.
  clip::TextEncoderOptions oe = o;
  oe.pooling = clip::TextPooling::EOS;
  clip::TextEncoder eos(oe);
  eos.eval();
  CHECK(max_abs_diff(eos.forward(long_pad), eos.forward(short_pad)) < 1e-5);
  Tensor other = b.tokenizer.encode_batch({"a photo of a coat"}, 16, true, true);
  CHECK(max_abs_diff(eos.forward(long_pad), eos.forward(other)) > 1e-4);

  // bad inputs name the module
  CHECK_THROWS_WITH_AS(enc.forward(Tensor::zeros({2, 5})), doctest::Contains("TextEncoder"), Error);
  CHECK_THROWS_WITH_AS(enc.forward(Tensor::zeros({2, 17}, kInt64)),
                       doctest::Contains("1 <= T <= 16"), Error);
  CHECK_THROWS_AS(clip::TextEncoder([] {
                    clip::TextEncoderOptions bad;
                    bad.vocab_size = 10;
                    bad.width = 6;
                    bad.heads = 4;  // 6 is not divisible by 4
                    return bad;
                  }()),
                  Error);

  clip::ImageEncoderOptions io;
  io.channels = {4, 8, 8};
  io.pool_size = 3;
  io.embed_dim = 5;
  clip::ImageEncoder img(io);
  CHECK(img.forward(Tensor::randn({3, 1, 28, 28})).shape() == Shape{3, 5});
  CHECK_THROWS_WITH_AS(img.forward(Tensor::randn({3, 3, 28, 28})),
                       doctest::Contains("ImageEncoder"), Error);

  clip::MiniCLIP model(std::make_shared<clip::ImageEncoder>(io),
                       std::make_shared<clip::TextEncoder>(o));
  CHECK_THROWS_WITH_AS(model.forward(Tensor::randn({3, 1, 28, 28}), long_pad),
                       doctest::Contains("same size"), Error);
  // the learnable temperature is a parameter of the model
  bool found = false;
  for (auto& [name, t] : model.named_parameters()) found |= name == "criterion.logit_scale";
  CHECK(found);
}

TEST_CASE("class_target_clip_loss: CLIP's loss when labels differ, and its gradient") {
  Generator g(5);
  Tensor img = Tensor::randn({6, 4}, kFloat64, &g), txt = Tensor::randn({6, 4}, kFloat64, &g);
  Tensor scale = Tensor::scalar(std::log(1 / 0.07), kFloat64);
  nn::ClipLossResult r = nn::clip_loss(img, txt, scale);
  Tensor distinct = Tensor::arange(6);
  CHECK(clip::class_target_clip_loss(r.logits_per_image, distinct).item() ==
        doctest::Approx(r.loss.item()).epsilon(1e-12));
  // with classes {0, 0, 1, 1, 1, 2}, by hand for row 0: -(log p00 + log p01) / 2
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 0, 1, 1, 1, 2});
  Tensor logits = r.logits_per_image.detach();
  Tensor lp = log_softmax(logits, 1), lpt = log_softmax(logits.t(), 1);
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  double want = 0;
  for (int i = 0; i < 6; ++i) {
    int n = 0;
    for (int j = 0; j < 6; ++j) n += y[j] == y[i];
    for (int j = 0; j < 6; ++j)
      if (y[j] == y[i]) want -= (lp.at({i, j}) + lpt.at({i, j})) / (2.0 * n * 6);
  }
  CHECK(clip::class_target_clip_loss(logits, labels).item() ==
        doctest::Approx(want).epsilon(1e-12));
  GradcheckResult gc = gradcheck(
      [&](const std::vector<Tensor>& x) { return clip::class_target_clip_loss(x[0], labels); },
      {Tensor::randn({6, 6}, kFloat64, &g).requires_grad_()});
  CHECK_MESSAGE(gc.ok, gc.report);
  CHECK_THROWS_WITH_AS(clip::class_target_clip_loss(logits, Tensor::arange(5)),
                       doctest::Contains("class_target_clip_loss"), Error);
}

TEST_CASE("train_clip: the loss falls on an easy task, then encoding, zero-shot and ensembles") {
  // Images whose brightness pattern encodes the class: a 4x4 block lit at a class position.
  const int64_t n = 120, classes = 10;
  Tensor images = Tensor::zeros({n, 1, 28, 28});
  std::vector<int64_t> y(n);
  Generator g(9);
  Tensor noise = Tensor::rand({n, 1, 28, 28}, kFloat32, &g) * 0.2;
  {
    NoGradGuard ng;
    images.copy_(noise);
    float* p = images.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) {
      y[i] = i % classes;
      const int64_t r0 = 4 + 8 * (y[i] / 4), c0 = 2 + 6 * (y[i] % 4);
      for (int64_t r = r0; r < r0 + 4; ++r)
        for (int64_t c = c0; c < c0 + 4; ++c) p[i * 784 + r * 28 + c] += 1.0f;
    }
  }
  Tensor labels = Tensor::from_vector(y);
  clip::CaptionBank b = clip::make_fmnist_captions();
  clip::FmnistClipConfig cfg = tiny_config();
  cfg.image.channels = {8, 16};
  cfg.image.pool_size = 7;
  cfg.text.width = 16;
  cfg.text.embed_dim = 16;
  CHECK_THROWS_WITH_AS(clip::make_fmnist_clip(cfg, b), doctest::Contains("same size"), Error);
  cfg.image.embed_dim = 16;
  auto model = clip::make_fmnist_clip(cfg, b);
  clip::TrainOptions o;
  o.steps = 40;
  o.batch_size = 40;
  o.lr = 5e-3;
  o.warmup_steps = 2;
  clip::TrainLog log = clip::train_clip(*model, images, labels, b, o);
  REQUIRE(log.losses.size() == 40);
  CHECK(log.tail_mean(5) < log.losses.front() - 0.5);
  CHECK(log.loss_floor > 0.0);
  CHECK(log.loss_floor < std::log(40.0));
  CHECK_FALSE(model->is_training());

  // batched encoding equals one batch; the model's mode is restored
  model->train();
  Tensor all = clip::encode_images(*model, images, kCPU, 1000);
  Tensor chunked = clip::encode_images(*model, images, kCPU, 7);
  CHECK(model->is_training());
  CHECK(all.shape() == Shape{n, 16});
  CHECK(max_abs_diff(all, chunked) < 1e-5);
  CHECK(max_abs_diff(sum(all * all, {1}), Tensor::ones({n})) < 1e-5);

  // class embeddings: unit rows; one template = that template's prompts; the string form
  // agrees with the index form
  Tensor e0 = clip::class_embeddings(*model, b, {0});
  CHECK(max_abs_diff(e0, clip::encode_texts(*model, b.class_prompts(0))) < 1e-5);
  Tensor ens = clip::class_embeddings(*model, b, clip::ensemble_template_ids());
  CHECK(max_abs_diff(sum(ens * ens, {1}), Tensor::ones({classes})) < 1e-5);
  std::vector<std::string> five;
  for (int64_t t : clip::ensemble_template_ids()) five.push_back(b.templates[t]);
  CHECK(max_abs_diff(ens, clip::class_embeddings_from(*model, b, five)) < 1e-5);
  // the easy task is learned (training images; this only checks the plumbing)
  Tensor pred = clip::zero_shot_predict(all, e0);
  CHECK(pred.shape() == Shape{n});
  CHECK(sum(eq(pred, labels).to(kInt64)).item() > n / 2);

  CHECK_THROWS_WITH_AS(clip::train_clip(*model, images, labels.narrow(0, 0, 10), b, o),
                       doctest::Contains("train_clip"), Error);
  clip::TrainOptions bad = o;
  bad.templates = {99};
  CHECK_THROWS_WITH_AS(clip::train_clip(*model, images, labels, b, bad),
                       doctest::Contains("template 99"), Error);
}

TEST_CASE("clip checkpoint cache: same config loads, anything else is refused with a reason") {
  clip::CaptionBank b = clip::make_fmnist_captions();
  clip::FmnistClipConfig cfg = tiny_config();
  auto a = clip::make_fmnist_clip(cfg, b);
  // the same config gives the same initial weights (the cache relies on it)
  auto a2 = clip::make_fmnist_clip(cfg, b);
  CHECK(max_abs_diff(a->image_encoder->parameters()[0], a2->image_encoder->parameters()[0]) == 0);
  {
    NoGradGuard ng;
    for (Tensor& p : a->parameters()) p.add_(Tensor::full(p.shape(), 0.25));  // "trained"
  }
  const std::string path = temp_path("cache.ckpt");
  clip::save_clip_checkpoint(*a, cfg, b, path);

  auto fresh = clip::make_fmnist_clip(cfg, b);
  CHECK(clip::try_load_clip_checkpoint(*fresh, cfg, b, path) == "");
  auto pa = a->parameters(), pf = fresh->parameters();
  REQUIRE(pa.size() == pf.size());
  for (size_t i = 0; i < pa.size(); ++i) CHECK(max_abs_diff(pa[i], pf[i]) == 0.0);

  // another training recipe, another seed, another architecture: refused, model unchanged
  for (int variant = 0; variant < 3; ++variant) {
    clip::FmnistClipConfig other = cfg;
    if (variant == 0) other.train.steps = 4;
    if (variant == 1) other.train.seed = 4;
    if (variant == 2) other.text.pooling = clip::TextPooling::EOS;
    auto m = clip::make_fmnist_clip(other, b);
    Tensor before = m->parameters()[0].clone();
    std::string why = clip::try_load_clip_checkpoint(*m, other, b, path);
    CHECK(why.find("different configuration") != std::string::npos);
    CHECK(max_abs_diff(before, m->parameters()[0]) == 0.0);
  }
  // missing file
  CHECK(clip::try_load_clip_checkpoint(*fresh, cfg, b, temp_path("none.ckpt"))
            .find("no checkpoint") != std::string::npos);
  // truncated file
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(temp_path("cut.ckpt"), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  std::string why = clip::try_load_clip_checkpoint(*fresh, cfg, b, temp_path("cut.ckpt"));
  CHECK(why.find("could not be read") != std::string::npos);
  CHECK(why.find("truncated") != std::string::npos);
  // a plain module checkpoint (no signature)
  save(*a, temp_path("plain.ckpt"));
  CHECK(clip::try_load_clip_checkpoint(*fresh, cfg, b, temp_path("plain.ckpt"))
            .find("no configuration signature") != std::string::npos);
  for (const char* f : {"cache.ckpt", "cut.ckpt", "plain.ckpt"}) std::remove(temp_path(f).c_str());
}
