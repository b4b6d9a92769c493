// Lesson 04: a mini CLIP, trained twice.
//
// CLIP learns one embedding space for pictures and for text by pulling each image towards its
// own caption and away from the other captions of the batch (the InfoNCE loss of lesson 02).
// Once trained, "which caption fits this image best?" classifies images into classes it was
// never given labels for: zero-shot classification. The model itself (encoders, loss, training
// loop, captions) is in clip.h / clip.cpp beside this file.
//
// What you will see (each section is one function below, in this order; main() lists them):
//   Part A: the seed notebook's exercise, reproduced exactly
//     1. synthetic_data: five colour classes of noisy 3x16x16 images, each with an 8-token
//        caption (synthetic_samples.png).
//     2. synthetic_model: a CNN image encoder (conv 3->32->64->128, global average pooling,
//        linear projection to 64) and a transformer text encoder (token + position embeddings,
//        2 layers, 4 heads, mean pooling, projection), joined by CLIP's loss with a learnable
//        temperature. The module tree with its parameter counts.
//     3. train_synthetic: 100 steps of Adam (lr 1e-3) on random batches of 32 pairs. The loss
//        starts near log 32 = 3.47 (chance) and ends far below it (loss_synthetic.svg).
//     4. zero_shot_synthetic: zero-shot classification of a freshly generated held-out set:
//        the clean caption of each class is the "prompt"; every image goes to the most similar
//        prompt (100%). The embeddings of images and captions in one PCA plot
//        (embeddings_synthetic.svg).
//   Part B: the same recipe on real images, Fashion-MNIST
//     5. fmnist_captions: captions from class names through templates ("a photo of a
//        sneaker", ...) and the word tokenizer built over them.
//     6. train_fmnist: the model for 1x28x28 images, trained on the 60,000 training images
//        with randomly templated captions (loss_fmnist.svg). The trained model is saved for
//        lessons 05/06.
//     7. zero_shot_fmnist: zero-shot classification of the 10,000 test images with the prompt
//        "a photo of a {class}" (target >= 90%), a few predictions, and the shared space in
//        PCA (embeddings_fmnist.svg).
//
// --steps sets the Fashion-MNIST training steps (Part A always runs the seed's 100).
// The last line is `result: synthetic_final_loss=... synthetic_zero_shot_acc=...
// fmnist_zero_shot_acc=... seconds=...`.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "common/lesson.h"
#include "mmgrad/data/fashion_mnist.h"
#include "mmgrad/data/image.h"
#include "mmgrad/data/loader.h"
#include "mmgrad/data/synthetic.h"
#include "mmgrad/metrics/metrics.h"
#include "mmgrad/metrics/pca.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/optim/optim.h"
#include "mmgrad/plot/figure.h"

using namespace mmgrad;

namespace {

// "#rrggbb" for an RGB colour in [0, 1] (the synthetic classes are drawn in their own colour,
// a little darker: each channel scaled to 0..200 of 255).
std::string hex_colour(const std::array<float, 3>& c) {
  const char* digits = "0123456789abcdef";
  std::string s = "#";
  for (float v : c) {
    const long b = std::lround(v * 200);
    s += digits[b / 16];
    s += digits[b % 16];
  }
  return s;
}

// "[3, 17, 5, ...]": a row of token ids.
std::string tokens_str(const Tensor& row) {
  std::string s = "[";
  for (int64_t v : row.to_vector<int64_t>()) s += (s.size() > 1 ? ", " : "") + std::to_string(v);
  return s + "]";
}

// A loss curve with the chance level log N (N = batch size) as a dashed line.
void save_loss_curve(const std::vector<double>& losses, int64_t batch, const std::string& title,
                     const std::string& path) {
  plot::LinePlot p(title, "step", "contrastive loss");
  std::vector<double> steps(losses.size());
  for (size_t i = 0; i < steps.size(); ++i) steps[i] = static_cast<double>(i + 1);
  p.add_series("training loss", steps, losses);
  const double chance = std::log(static_cast<double>(batch));
  p.add_hline(lesson::format("chance: log {} = {:.2f}", batch, chance), chance);
  p.set_ylim(0.0, std::max(losses.front(), chance) * 1.1);
  p.save(path);
  lesson::print("wrote {}", path);
}

// Image and text embeddings in one 2-D PCA picture: circles are images, squares captions,
// colours are classes. PCA is fitted on both sets together, so both live in the same axes.
void save_embedding_pca(const Tensor& img_emb, const Tensor& img_labels, const Tensor& txt_emb,
                        const Tensor& txt_labels, const std::vector<std::string>& class_names,
                        const std::vector<std::string>& colours, const std::string& title,
                        const std::string& path) {
  metrics::PCAResult fit = metrics::pca(cat({img_emb, txt_emb}, 0), 2);
  Tensor xy = fit.projected;
  const int64_t n_img = img_emb.size(0);
  plot::ScatterPlot s(title, "PC 1", "PC 2");
  s.add_classes(xy.narrow(0, 0, n_img), img_labels, class_names, plot::Marker::Circle, "image",
                colours);
  s.add_classes(xy.narrow(0, n_img, txt_emb.size(0)), txt_labels, class_names, plot::Marker::Square,
                "text", colours);
  s.set_point_size(3.5).set_opacity(0.7);
  s.save(path);
  std::vector<double> ratio = fit.explained_variance_ratio.to_vector<double>();
  lesson::print("wrote {} (the two components keep {:.0%} of the variance)", path,
                ratio[0] + ratio[1]);
}

// =================================================================================================
// Part A: the seed notebook's MiniCLIP exercise
// =================================================================================================

// ---- 1. The data --------------------------------------------------------------------------------
// Each class is a colour; an image is that colour plus Gaussian noise (std 0.2) on every pixel
// of every channel; a caption is the class's token pattern with a little token noise. 20 pairs
// per class, 100 in all: the training set.
data::SyntheticPairs synthetic_data(const lesson::Args& args) {
  lesson::section("1. Part A: five colour classes, images and 8-token captions");
  const std::vector<std::string>& colour_names = data::synthetic_class_names();
  Generator train_gen(2 * args.seed + 1);
  data::SyntheticPairs syn = data::make_synthetic_pairs({}, train_gen);
  lesson::print(
      "training pairs: {}, images {}, captions {} (vocabulary of {} token ids, 0 is padding)",
      syn.labels.size(0), syn.images.shape_str(), syn.captions.shape_str(),
      data::kSyntheticVocabSize);
  lesson::print("\nclass     clean caption pattern        a noisy training caption");
  for (int64_t c = 0; c < data::kSyntheticNumClasses; ++c) {
    const auto& pat = data::synthetic_caption_patterns()[c];
    std::string clean = "[";
    for (size_t i = 0; i < pat.size(); ++i) clean += (i ? ", " : "") + std::to_string(pat[i]);
    clean += "]";
    // the training captions are ordered class by class, 20 each; show the second one
    lesson::print("{:<9} {:<28} {}", colour_names[c], clean, tokens_str(syn.captions[c * 20 + 1]));
  }
  std::vector<Tensor> samples;
  std::vector<std::string> sample_labels;
  for (int64_t c = 0; c < data::kSyntheticNumClasses; ++c)
    for (int64_t k = 0; k < 4; ++k) {
      // the images are colour + noise, not clipped; clamp to [0, 1] for the picture only
      samples.push_back(syn.images[c * 20 + k].clamp(0.0, 1.0));
      sample_labels.push_back(colour_names[c]);
    }
  const std::string samples_png = args.path("synthetic_samples.png");
  data::save_image_grid(samples, 4, samples_png, sample_labels, 4);
  lesson::print("\nwrote {} (four training images per class)", samples_png);
  return syn;
}

// ---- 2. The model -------------------------------------------------------------------------------
// Two encoders into one 64-d space, as in the notebook. The text encoder averages its token
// states over all 8 positions (padding included, as the notebook does) and uses dropout 0.1
// while training.
std::shared_ptr<clip::MiniCLIP> synthetic_model(Device dev) {
  lesson::section("2. The model: CNN image encoder + transformer text encoder");
  clip::ImageEncoderOptions img;
  img.in_channels = 3;
  img.channels = {32, 64, 128};
  img.pool_size = 1;
  img.embed_dim = 64;
  clip::TextEncoderOptions txt;
  txt.vocab_size = data::kSyntheticVocabSize;
  txt.width = 64;
  txt.embed_dim = 64;
  txt.max_len = 32;
  txt.heads = 4;
  txt.layers = 2;
  txt.dropout = 0.1;
  txt.pooling = clip::TextPooling::Mean;
  txt.mask_padding = false;
  auto model = std::make_shared<clip::MiniCLIP>(std::make_shared<clip::ImageEncoder>(img),
                                                std::make_shared<clip::TextEncoder>(txt),
                                                /*init_temperature=*/0.07);
  model->to(dev);
  lesson::print("{}", model->repr());
  lesson::print("MiniCLIP parameters: {} (the notebook's model: the same layers)",
                nn::format_count(model->num_parameters()));
  lesson::print("learnable temperature: logit_scale = log(1/0.07) = {:.3f}, temperature {:.3f}",
                model->criterion->logit_scale.item(), model->criterion->temperature());
  return model;
}

// ---- 3. Training --------------------------------------------------------------------------------
// Exactly the notebook's loop: each step draws 32 of the 100 pairs at random, computes the
// symmetric InfoNCE loss of the batch (32 x 32 similarities, the diagonal holds the matching
// pairs), and takes one Adam step on all parameters, the temperature included.
constexpr int64_t kSynSteps = 100, kSynBatch = 32;

struct SynTraining {
  std::vector<double> losses;  // one per step
  double floor = 0;            // the lowest loss these batches allow (see below)
};

SynTraining train_synthetic(const lesson::Args& args, clip::MiniCLIP& model,
                            const data::SyntheticPairs& syn) {
  lesson::section("3. Training: 100 steps of Adam (lr 1e-3), batches of 32 pairs");
  optim::Adam opt(model.parameters(), {.lr = 1e-3});
  SynTraining tr;
  const std::vector<int64_t> y = syn.labels.to_vector<int64_t>();
  model.train();
  const double t0 = lesson::elapsed_seconds();
  for (int64_t step = 0; step < kSynSteps; ++step) {
    // torch.randperm(100)[:32]: a fresh random subset every step
    std::vector<int64_t> perm =
        data::permutation(syn.labels.size(0), args.seed, static_cast<uint64_t>(step));
    perm.resize(kSynBatch);
    int64_t count[data::kSyntheticNumClasses] = {};
    for (int64_t i : perm) ++count[y[i]];
    for (int64_t i : perm) tr.floor += std::log(static_cast<double>(count[y[i]]));
    Tensor x = data::take_rows(syn.images, perm).to(args.device);
    Tensor t = data::take_rows(syn.captions, perm).to(args.device);
    opt.zero_grad();
    Tensor loss = model.forward(x, t).loss;
    loss.backward();
    opt.step();
    tr.losses.push_back(loss.item());
    if ((step + 1) % 20 == 0)
      lesson::print("  step {:3}/{}: loss = {:.4f}", step + 1, kSynSteps, tr.losses.back());
  }
  model.eval();
  const double log32 = std::log(static_cast<double>(kSynBatch));
  lesson::print("\nFinal loss: {:.4f} (random baseline: log {} = {:.4f}), {:.1f} s",
                tr.losses.back(), kSynBatch, log32, lesson::elapsed_seconds() - t0);
  tr.floor /= static_cast<double>(kSynSteps * kSynBatch);
  lesson::print("temperature after training: {:.4f}", model.criterion->temperature());
  lesson::print(
      "\nWhy not 0? A batch of 32 pairs from 5 classes holds about 6 pairs of each class, and\n"
      "images of one class differ only by noise: for an image, the captions of its whole class\n"
      "fit equally well. With n such captions the best the loss can do is log n; averaged over\n"
      "these batches that floor is {:.3f} (each batch's own floor varies with its class counts).\n"
      "The loss sits at the floor: the model has learned everything there is to learn.",
      tr.floor);
  save_loss_curve(tr.losses, kSynBatch, "Part A: MiniCLIP on synthetic colour pairs",
                  args.path("loss_synthetic.svg"));
  return tr;
}

// ---- 4. Zero-shot classification on new data ----------------------------------------------------
// The mean of sim[i][c] over the images i of each true class r: a classes x classes table.
void print_mean_similarity(const Tensor& sim, const Tensor& labels,
                           const std::vector<std::string>& names) {
  const int64_t C = static_cast<int64_t>(names.size());
  lesson::print_inline(
      "\nmean cosine similarity of an image with each prompt (rows: true class):\n{:9}", "");
  for (int64_t c = 0; c < C; ++c) lesson::print_inline(" {:>8}", names[c]);
  lesson::print("");
  std::vector<double> s = sim.to_vector<double>();
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  for (int64_t r = 0; r < C; ++r) {
    lesson::print_inline("{:<9}", names[r]);
    for (int64_t c = 0; c < C; ++c) {
      double acc = 0;
      int64_t cnt = 0;
      for (size_t i = 0; i < y.size(); ++i)
        if (y[i] == r) acc += s[i * C + c], ++cnt;
      lesson::print_inline(" {:8.3f}", acc / static_cast<double>(cnt));
    }
    lesson::print("");
  }
}

// The "prompts" are the five clean caption patterns; an image is assigned the class whose
// prompt embedding has the highest cosine similarity with the image embedding. The held-out
// images are generated afresh (another random stream), so the model has never seen them.
// Returns the zero-shot accuracy.
double zero_shot_synthetic(const lesson::Args& args, clip::MiniCLIP& model, const SynTraining& tr) {
  lesson::section("4. Zero-shot classification of a fresh held-out set");
  const std::vector<std::string>& colour_names = data::synthetic_class_names();
  const int64_t C = data::kSyntheticNumClasses;
  Generator heldout_gen(2 * args.seed + 2);
  data::SyntheticOptions held_opts;
  held_opts.n_per_class = 100;
  data::SyntheticPairs held = data::make_synthetic_pairs(held_opts, heldout_gen);
  std::vector<int64_t> pattern_ids;
  for (const auto& pat : data::synthetic_caption_patterns())
    pattern_ids.insert(pattern_ids.end(), pat.begin(), pat.end());
  Tensor prompts = Tensor::from_vector(pattern_ids, {C, 8});
  Tensor held_img = clip::encode_images(model, held.images, args.device);
  Tensor prompt_emb = clip::encode_texts(model, prompts, args.device);
  Tensor sim = clip::similarity(held_img, prompt_emb);  // [500, 5] cosine similarities
  Tensor pred = sim.argmax(1);
  const double acc = metrics::accuracy(pred, held.labels);
  std::vector<double> per_class =
      metrics::per_class_accuracy(pred, held.labels, C).to_vector<double>();
  lesson::print("held-out images: {} (100 per class)", held.labels.size(0));
  lesson::print("zero-shot accuracy: {:.1%}", acc);
  for (int64_t c = 0; c < C; ++c) lesson::print("  {:<8} {:7.1%}", colour_names[c], per_class[c]);
  print_mean_similarity(sim, held.labels, colour_names);

  std::vector<std::string> colours;
  for (const auto& c : data::synthetic_class_colors()) colours.push_back(hex_colour(c));
  Tensor held_txt = clip::encode_texts(model, held.captions, args.device);
  lesson::print("");
  save_embedding_pca(held_img, held.labels, held_txt, held.labels, colour_names, colours,
                     "Part A: images and captions share one space",
                     args.path("embeddings_synthetic.svg"));
  lesson::print(
      "(Each image cluster sits next to its class's captions. Captions whose token noise\n"
      "hit the class tokens drift away from their class: the text encoder reads tokens.)");
  // "Far below log 32": we ask for at least 1 nat below chance (the floor is ~1.8).
  const double log32 = std::log(static_cast<double>(kSynBatch));
  const bool ok = tr.losses.back() < log32 - 1.0 && acc >= 1.0;
  lesson::print(
      "\nTarget: final loss far below log 32 (< log 32 - 1 = {:.2f}; floor {:.2f}) and 100% "
      "zero-shot accuracy: {} (final loss {:.3f}, accuracy {:.1%})",
      log32 - 1.0, tr.floor, ok ? "met" : "MISSED", tr.losses.back(), acc);
  return acc;
}

// =================================================================================================
// Part B: Fashion-MNIST
// =================================================================================================

// ---- 5. Captions from templates -----------------------------------------------------------------
// Real images have no captions, so we make them from the class name and a template. Training
// draws a random template for every image at every step; the model cannot memorise one
// sentence per class, it has to find the class word.
clip::CaptionBank fmnist_captions() {
  lesson::section("5. Part B: captions for Fashion-MNIST from templates");
  clip::CaptionBank captions = clip::make_fmnist_captions();
  lesson::print("{} templates x {} classes = {} captions, e.g.:", captions.num_templates(),
                captions.num_classes(), captions.tokens.size(0));
  for (int64_t t = 0; t < captions.num_templates(); ++t)
    lesson::print("  {:<36} -> \"{}\"", captions.templates[t],
                  captions.text((t * 3) % captions.num_classes(), t));
  lesson::print(
      "\nThe tokenizer splits words and punctuation; its vocabulary is every token of these "
      "captions\n({} ids, 0-3 are <pad> <bos> <eos> <unk>). One caption as token ids (BOS ... "
      "EOS, then padding):\n  \"{}\"\n  {}",
      captions.tokenizer.vocab_size(), captions.text(9, 1),
      tokens_str(captions.tokens[captions.row(9, 1)]));
  return captions;
}

// ---- 6. Training on Fashion-MNIST ---------------------------------------------------------------
// The same two-tower model for 1x28x28 grey images. Changes from Part A, chosen by measurement
// for this time budget (see clip.cpp's default_fmnist_config): narrower convolutions (16, 32,
// 64 channels), and the last 7x7 feature map kept whole for the projection (adaptive pooling to
// 7x7 instead of 1x1: where on the image the features are matters for clothing; at 300 steps
// global pooling reached ~81%, 7x7 ~89%). Padding tokens are masked out of attention and of the
// mean. Batches of 256, 800 steps (3.4 passes over the images), Adam with warm-up and cosine
// decay.
struct FmnistRun {
  std::shared_ptr<clip::MiniCLIP> model;
  data::Dataset test;  // the test images, never used for training
  clip::TrainLog log;
};

FmnistRun train_fmnist(const lesson::Args& args, const clip::CaptionBank& captions) {
  lesson::section("6. Training on the 60,000 Fashion-MNIST training images");
  const Device dev = args.device;
  clip::FmnistClipConfig cfg = clip::default_fmnist_config(args);
  data::Dataset train = data::load_fashion_mnist(data::Split::Train, args.data, cfg.train_limit);
  FmnistRun run;
  run.test = data::load_fashion_mnist(data::Split::Test, args.data, args.quick ? 2000 : -1);
  lesson::print("train: {} images, test: {} images (never used for training)", train.size(),
                run.test.size());
  run.model = clip::make_fmnist_clip(cfg, captions);
  run.model->to(dev);
  lesson::print("image encoder: {}, {} parameters", cfg.image.str(),
                nn::format_count(run.model->image_encoder->num_parameters()));
  lesson::print("text encoder: width {}, {} layers, {} heads, mean pooling, {} parameters",
                cfg.text.width, cfg.text.layers, cfg.text.heads,
                nn::format_count(run.model->text_encoder->num_parameters()));
  lesson::print("training: {}\n", cfg.train.str());
  clip::TrainOptions topt = cfg.train;
  topt.log_every = std::max<int64_t>(1, topt.steps / 5);
  run.log = clip::train_clip(*run.model, train.images, train.labels, captions, topt, dev);
  const clip::TrainLog& log = run.log;
  lesson::print(
      "\ntrained in {:.1f} s; loss {:.3f} -> {:.3f} (mean of the last 20 steps; chance log {} = "
      "{:.3f}), temperature {:.4f}",
      log.seconds, log.losses.front(), log.tail_mean(), topt.batch_size,
      std::log(static_cast<double>(topt.batch_size)), log.final_temperature);
  lesson::print(
      "(As in Part A the loss has a floor: a batch of {} holds ~{} images per class,\n"
      "and each image's caption is as good a match for the other images of its class.\n"
      "The floor, mean log(pairs of the same class), is {:.3f} for these batches.)",
      topt.batch_size, topt.batch_size / 10, log.loss_floor);
  save_loss_curve(log.losses, topt.batch_size, "Part B: MiniCLIP on Fashion-MNIST",
                  args.path("loss_fmnist.svg"));
  const std::string ckpt = args.path(args.quick ? "fmnist_clip_quick.ckpt" : "fmnist_clip.ckpt");
  clip::save_clip_checkpoint(*run.model, cfg, captions, ckpt);
  lesson::print("saved the trained model to {} (lessons 05 and 06 reuse it)", ckpt);
  return run;
}

// ---- 7. Zero-shot on the test set ---------------------------------------------------------------
// Embed the ten prompts "a photo of a {class}" once, embed every test image, and pick the most
// similar prompt. Returns the zero-shot accuracy.
double zero_shot_fmnist(const lesson::Args& args, const clip::CaptionBank& captions,
                        FmnistRun& run) {
  lesson::section("7. Zero-shot classification of the 10,000 test images");
  const Device dev = args.device;
  const data::Dataset& test = run.test;
  Tensor test_emb = clip::encode_images(*run.model, test.images, dev);
  Tensor class_emb = clip::class_embeddings(*run.model, captions, {clip::kSingleTemplate}, dev);
  Tensor test_sim = clip::similarity(test_emb, class_emb);
  Tensor test_pred = test_sim.argmax(1);
  const double acc = metrics::accuracy(test_pred, test.labels);
  const auto& names = data::fashion_mnist_classes();
  lesson::print("prompt: \"{}\" for each class", captions.templates[clip::kSingleTemplate]);
  lesson::print("zero-shot accuracy on {} test images: {:.2%} (chance: 10%)\n", test.size(), acc);
  lesson::print("a few test images:");
  std::vector<int64_t> y = test.labels.to_vector<int64_t>(), p = test_pred.to_vector<int64_t>();
  std::vector<double> s = test_sim.to_vector<double>();
  for (int64_t i = 0; i < 8; ++i)
    lesson::print("  #{}  true {:<12} predicted {:<12} (cosine {:.3f}){}", i, names[y[i]],
                  names[p[i]], s[i * 10 + p[i]], y[i] == p[i] ? "" : "   <- wrong");
  // PCA of 1000 test images and all 80 caption embeddings
  const int64_t n_show = std::min<int64_t>(1000, test.size());
  Tensor cap_emb = clip::encode_texts(*run.model, captions.tokens, dev);
  std::vector<int64_t> cap_labels;
  for (int64_t c = 0; c < captions.num_classes(); ++c)
    for (int64_t t = 0; t < captions.num_templates(); ++t) cap_labels.push_back(c);
  lesson::print("");
  save_embedding_pca(test_emb.narrow(0, 0, n_show), test.labels.narrow(0, 0, n_show), cap_emb,
                     Tensor::from_vector(cap_labels), names, {},
                     "Part B: Fashion-MNIST test images and captions",
                     args.path("embeddings_fmnist.svg"));
  lesson::print(
      "(All 8 templates of a class land on nearly the same point: the text encoder has\n"
      "learned that only the class word matters.)\n");
  const double target = 0.90;
  if (acc >= target)
    lesson::print("Target: zero-shot accuracy >= 90%: met ({:.2%})", acc);
  else
    lesson::print("Target: zero-shot accuracy >= 90%: MISSED by {:.2f} points ({:.2%}){}",
                  100.0 * (target - acc), acc,
                  args.quick ? " -- expected in --quick mode (50 training steps)" : "");
  return acc;
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Args args = lesson::parse_args(
        argc, argv, "04_mini_clip",
        "a mini CLIP: the seed's synthetic exercise, then Fashion-MNIST images and captions",
        lesson::kUsesSteps | lesson::kUsesData);

    // Part A: the seed notebook's exercise
    data::SyntheticPairs syn = synthetic_data(args);
    std::shared_ptr<clip::MiniCLIP> syn_model = synthetic_model(args.device);
    SynTraining syn_training = train_synthetic(args, *syn_model, syn);
    double syn_acc = zero_shot_synthetic(args, *syn_model, syn_training);

    // Part B: Fashion-MNIST
    clip::CaptionBank captions = fmnist_captions();
    FmnistRun fmnist = train_fmnist(args, captions);
    double fm_acc = zero_shot_fmnist(args, captions, fmnist);

    lesson::Result()
        .add("synthetic_final_loss", syn_training.losses.back())
        .add("synthetic_zero_shot_acc", syn_acc)
        .add("fmnist_zero_shot_acc", fm_acc)
        .add("fmnist_final_loss", fmnist.log.tail_mean())
        .add("log_32", std::log(static_cast<double>(kSynBatch)))
        .add("train_seconds", fmnist.log.seconds)
        .print();
  });
}
