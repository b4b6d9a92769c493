// Lesson 07: the mini CLIP with a Vision Transformer image encoder, against the CNN encoder.
//
// Lessons 04-06 used a CNN to turn an image into a vector. CLIP's best models use a Vision
// Transformer (ViT) instead, and CLIP's text encoder reads its caption summary from the EOS
// token. Here we build both and train two mini CLIPs that differ only in the image encoder.
//
// What you will see (one function per section, in this order):
//   1. show_data: Fashion-MNIST images and their template captions (as in lesson 04).
//   2. patches_to_tokens: a 28x28 image cut into a 4x4 grid of 7x7 patches; each patch becomes
//      one token (patches.png), and the shapes of every step of the patch embedding.
//   3. cls_and_eos_pooling: how a whole sequence of token states becomes one vector. The image
//      side reads a learned extra token (CLS); the text side reads the end-of-sequence token,
//      which under a causal mask is the only position that has seen the whole caption.
//   4. build_models: ViT + text transformer, and CNN (lessons/04_mini_clip/clip) + the same
//      text transformer; their sizes.
//   5. train_both: the same data, steps, batch size, optimizer and schedule for both
//      (loss_curves.svg).
//   6. compare_zero_shot: zero-shot accuracy on the 10,000 test images (which training never
//      sees) and training time, side by side (comparison.svg), and what each encoder brings.
//   7. where_the_vit_looks: the attention of the CLS token over the 16 patches for a few test
//      images, laid over the images with a colour scale (cls_attention.png; the weights in
//      cls_attention_weights.csv).
//   8. over_seeds: one run is one draw. How far both accuracies move with the seed (measured
//      ranges); with --seeds N the lesson trains the comparison for N seeds and prints each
//      seed's accuracies and their mean and spread.
//
// The last line is `result: vit_acc=... cnn_acc=... vit_train_s=... cnn_train_s=... ...`.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "07_vit_clip/vit_clip.h"
#include "common/lesson.h"
#include "mmgrad/core/file_util.h"
#include "mmgrad/data/fashion_mnist.h"
#include "mmgrad/data/image.h"
#include "mmgrad/data/loader.h"
#include "mmgrad/metrics/metrics.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/plot/figure.h"

using namespace mmgrad;

namespace {

// The settings of the comparison. Both models get exactly the same training recipe.
struct Setup {
  int64_t train_limit = -1;  // training images (-1: all 60,000)
  int64_t test_limit = -1;   // test images evaluated (-1: all 10,000)
  clip::ViTOptions vit;
  clip::ImageEncoderOptions cnn;
  clip::TextEncoderOptions text;
  clip::TrainOptions train;
  int seeds = 1;  // --seeds: how many seeds section 8 trains the comparison for
};

Setup make_setup(const lesson::Args& args) {
  Setup s;
  s.vit.patch_size = args.get_int("--patch", 7);
  s.text.pooling = clip::TextPooling::EOS;
  s.text.causal = true;  // as CLIP's text encoder: position t sees positions <= t only
  s.text.mask_padding = true;
  s.text.dropout = 0.0;
  s.train.seed = args.seed;
  s.train.cosine = true;
  // The CNN is lesson 04's image encoder (3x3 convs, max pooling, the feature map pooled to
  // 7x7 and projected), at its size for this mode.
  s.cnn = clip::default_fmnist_config(args).image;
  if (args.quick) {
    s.train_limit = 8000;
    s.test_limit = 2000;
    // Half the channels ({8, 16, 32}): the CNN trains in about a third of the time and reaches
    // much the same zero-shot accuracy in 150 steps (seeds 0 / 1 / 2: 0.67 / 0.61 / 0.76;
    // {16, 32, 64} gave 0.73 on seed 0), still above the ViT's, as in the default run.
    s.cnn.channels = {8, 16, 32};
  }
  const int64_t width = args.quick ? 32 : 64;  // both transformers, and the shared space
  s.vit.width = s.vit.embed_dim = s.text.width = s.text.embed_dim = width;
  s.train.steps = args.quick ? 150 : 300;
  s.train.batch_size = 128;
  s.train.lr = 5e-3;
  s.train.warmup_steps = args.quick ? 10 : 20;
  // Both encoders map into the text encoder's space: the CNN projects to the same width.
  s.cnn.embed_dim = s.text.embed_dim;
  s.vit.layers = args.get_int("--vit-layers", static_cast<int>(s.vit.layers));
  s.train.steps = args.steps_or(static_cast<int>(s.train.steps));
  s.train.batch_size = args.get_int("--batch", static_cast<int>(s.train.batch_size));
  s.train.lr = args.get_double("--lr", s.train.lr);
  s.train.class_targets = args.get_int("--class-targets", s.train.class_targets ? 1 : 0) != 0;
  s.train.warmup_steps = std::min(s.train.warmup_steps, s.train.steps);
  s.seeds = args.get_int("--seeds", 1);
  MMGRAD_CHECK(s.vit.patch_size > 0 && 28 % s.vit.patch_size == 0, "--patch ", s.vit.patch_size,
               ": the patch size must divide 28 (1, 2, 4, 7, 14 or 28)");
  MMGRAD_CHECK(s.vit.layers >= 1 && s.vit.layers <= 12, "--vit-layers ", s.vit.layers,
               ": expected 1 to 12 layers");
  MMGRAD_CHECK(s.train.steps >= 1, "--steps ", s.train.steps, ": need at least one step");
  MMGRAD_CHECK(s.seeds >= 1 && s.seeds <= 20, "--seeds ", s.seeds, ": expected 1 to 20 seeds");
  return s;
}

// Zero-shot accuracy of a trained model on test images with one template and with the
// five-template ensemble (lesson 05).
struct Eval {
  double single = 0, ensemble = 0, encode_seconds = 0;
};

Eval evaluate(clip::MiniCLIP& model, const clip::CaptionBank& captions, const data::Dataset& test,
              Device device) {
  Eval e;
  const double t0 = lesson::elapsed_seconds();
  Tensor img = clip::encode_images(model, test.images, device);
  e.encode_seconds = lesson::elapsed_seconds() - t0;
  Tensor one = clip::class_embeddings(model, captions, {clip::kSingleTemplate}, device);
  Tensor ens = clip::class_embeddings(model, captions, clip::ensemble_template_ids(), device);
  e.single = metrics::accuracy(clip::zero_shot_predict(img, one), test.labels);
  e.ensemble = metrics::accuracy(clip::zero_shot_predict(img, ens), test.labels);
  return e;
}

// A running mean over `w` steps, to read a noisy loss curve.
std::vector<double> smooth(const std::vector<double>& v, size_t w) {
  std::vector<double> out(v.size());
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    s += v[i];
    if (i >= w) s -= v[i - w];
    out[i] = s / static_cast<double>(std::min(i + 1, w));
  }
  return out;
}

// What the sections hand on to each other.
struct Comparison {
  lesson::Args args;
  Setup setup;
  clip::CaptionBank captions;
  data::Dataset train, test;
  // section 2 builds the ViT encoder (to show its patch embedding), section 4 the rest
  std::shared_ptr<clip::ViTEncoder> vit_encoder;
  std::shared_ptr<clip::ImageEncoder> cnn_encoder;
  std::shared_ptr<clip::MiniCLIP> vit_clip, cnn_clip;
  // sections 5-6
  clip::TrainOptions topts;
  clip::TrainLog vit_log, cnn_log;
  Eval vit_eval, cnn_eval;
};

// ---- 1 ---------------------------------------------------------------------------------------
Comparison show_data(const lesson::Args& args) {
  lesson::section("1. The data: Fashion-MNIST images with template captions");
  Comparison c;
  c.args = args;
  c.setup = make_setup(args);
  c.captions = clip::make_fmnist_captions();
  c.train = data::load_fashion_mnist(data::Split::Train, args.data, c.setup.train_limit);
  c.test = data::load_fashion_mnist(data::Split::Test, args.data, c.setup.test_limit);
  lesson::print("{} training images, {} test images (never used for training).", c.train.size(),
                c.test.size());
  lesson::print("Captions: {} classes x {} templates, e.g. \"{}\", \"{}\".",
                c.captions.num_classes(), c.captions.num_templates(), c.captions.text(7, 0),
                c.captions.text(9, 1));
  lesson::print("Vocabulary: {} tokens (4 special: <pad> <bos> <eos> <unk>).",
                c.captions.tokenizer.vocab_size());
  return c;
}

// ---- 2 ---------------------------------------------------------------------------------------
void patches_to_tokens(Comparison& c) {
  lesson::section("2. From pixels to tokens: patches");
  c.vit_encoder = std::make_shared<clip::ViTEncoder>(c.setup.vit);
  const int64_t P = c.setup.vit.patch_size, G = c.vit_encoder->grid();
  const int64_t N = c.vit_encoder->num_patches(), width = c.setup.vit.width;
  lesson::print(
      "A transformer works on a sequence of vectors. A ViT makes one from an image by cutting\n"
      "it into non-overlapping {}x{} patches: a 28x28 image gives a {}x{} grid of {}\n"
      "patches, read row by row like words in a sentence. Each patch ({} pixels) is mapped\n"
      "to a {}-d token by the same linear map. A Conv2d whose kernel and stride both equal\n"
      "the patch size is exactly that map: each output position sees one patch, no overlap.\n",
      P, P, G, G, N, P * P, width);
  {
    NoGradGuard no_grad;
    Tensor x = c.test.images.narrow(0, 0, 1);  // one test image [1, 1, 28, 28]
    auto& pe = *c.vit_encoder->patch_embed;
    Tensor conv = pe.proj->forward(x);
    Tensor seq = conv.flatten(2).transpose(1, 2);
    Tensor with_cls = pe.forward(x);
    lesson::print("  image                         {}", describe(x));
    lesson::print("  Conv2d(1, {}, k={}, s={})       {}   one {}-d vector per patch", width, P, P,
                  describe(conv), width);
    lesson::print("  flatten(2).transpose(1, 2)    {}   a sequence of {} patch tokens",
                  describe(seq), N);
    lesson::print("  prepend CLS, add positions    {}   the transformer's input\n",
                  describe(with_cls));
  }
  // The patches of test image 0, each drawn as its own tile in a G x G grid.
  std::vector<Tensor> tiles;
  for (int64_t r = 0; r < G; ++r)
    for (int64_t col = 0; col < G; ++col)
      tiles.push_back(c.test.images[0].narrow(1, r * P, P).narrow(2, col * P, P).contiguous());
  data::save_image_grid(tiles, G, c.args.path("patches.png"), {}, std::max<int>(2, 56 / P));
  lesson::print(
      "Attention is blind to order, so a learned position embedding (one vector per slot) is\n"
      "added to every token: without it the ViT could not tell a patch at the top from the same\n"
      "patch at the bottom.");
  lesson::print("Figure: {} (test image 0, class {}, cut into its {} patches)",
                c.args.path("patches.png"),
                data::fashion_mnist_classes()[c.test.labels[0].item<int64_t>()], N);
}

// ---- 3 ---------------------------------------------------------------------------------------
void cls_and_eos_pooling(const Comparison& c) {
  lesson::section("3. One vector per input: CLS pooling (images) and EOS pooling (text)");
  lesson::print(
      "Both encoders output one state per token, but CLIP compares ONE vector per image with\n"
      "ONE vector per caption. Lesson 04's text encoder averaged the states (mean pooling).\n"
      "CLIP does it differently:\n\n"
      "  Image side, CLS pooling: an extra learned token, CLS, is put in front of the patches.\n"
      "  It carries no pixels of its own; in every layer it attends to all patches and gathers\n"
      "  what it needs. Its final state (position 0) is the image's summary.\n\n"
      "  Text side, EOS pooling: the caption is [BOS] words [EOS] [PAD]... and the encoder uses\n"
      "  a causal mask (position t attends to positions <= t only, as in GPT). Then the EOS\n"
      "  token is the only position that has seen every word, so its state is the caption's\n"
      "  summary. Padding after EOS is masked out and never read.\n");
  const std::string text = c.captions.text(9, 0);
  std::vector<int64_t> ids = c.captions.encode({text}).to_vector<int64_t>();
  lesson::print_inline("  \"{}\" ->\n  ", text);
  int64_t eos_at = -1;
  for (size_t t = 0; t < ids.size(); ++t) {
    lesson::print_inline("{} ", c.captions.tokenizer.id_to_token(ids[t]));
    if (ids[t] == data::Tokenizer::kEos && eos_at < 0) eos_at = static_cast<int64_t>(t);
  }
  lesson::print("\n  The text encoder reads the state at position {} (the EOS token).", eos_at);
}

// ---- 4 ---------------------------------------------------------------------------------------
// The two mini CLIPs of one seed. The text encoders are made right after manual_seed(seed), so
// both start from the same weights; the ViT encoder is made by the caller (section 2 shows it).
struct Models {
  clip::TextEncoderOptions text_opts;
  std::shared_ptr<clip::ImageEncoder> cnn_encoder;
  std::shared_ptr<clip::MiniCLIP> vit_clip, cnn_clip;
};
Models make_models(const Setup& setup, const clip::CaptionBank& captions,
                   const std::shared_ptr<clip::ViTEncoder>& vit_encoder, uint64_t seed) {
  Models m;
  m.text_opts = setup.text;
  m.text_opts.vocab_size = captions.tokenizer.vocab_size();
  m.text_opts.max_len = captions.max_len;
  manual_seed(seed);
  m.vit_clip = std::make_shared<clip::MiniCLIP>(vit_encoder,
                                                std::make_shared<clip::TextEncoder>(m.text_opts));
  manual_seed(seed);
  auto cnn_text = std::make_shared<clip::TextEncoder>(m.text_opts);
  m.cnn_encoder = std::make_shared<clip::ImageEncoder>(setup.cnn);
  m.cnn_clip = std::make_shared<clip::MiniCLIP>(m.cnn_encoder, cnn_text);
  return m;
}

void build_models(Comparison& c) {
  lesson::section("4. Two mini CLIPs that differ only in the image encoder");
  Models m = make_models(c.setup, c.captions, c.vit_encoder, c.args.seed);
  c.cnn_encoder = m.cnn_encoder;
  c.vit_clip = m.vit_clip;
  c.cnn_clip = m.cnn_clip;
  lesson::print("ViT image encoder:  {}\n  {} parameters", c.setup.vit.str(),
                c.vit_encoder->num_parameters());
  lesson::print("CNN image encoder:  {}\n  {} parameters", c.setup.cnn.str(),
                c.cnn_encoder->num_parameters());
  lesson::print("Text encoder (both): {}\n  {} parameters", m.text_opts.str(),
                c.vit_clip->text_encoder->num_parameters());
}

// ---- 5 ---------------------------------------------------------------------------------------
void train_both(Comparison& c) {
  lesson::section("5. Training both with the same budget");
  c.topts = c.setup.train;
  c.topts.log_every = std::max<int64_t>(1, c.topts.steps / 3);
  const clip::TrainOptions& o = c.topts;
  lesson::print(
      "Recipe for both: {}\n(each image gets a caption of its class under a random "
      "template; symmetric InfoNCE with a learnable temperature)\n",
      o.str());
  const Device dev = c.args.device;
  c.vit_clip->to(dev);
  c.cnn_clip->to(dev);
  lesson::print("ViT CLIP:");
  c.vit_log = clip::train_clip(*c.vit_clip, c.train.images, c.train.labels, c.captions, o, dev);
  lesson::print("CNN CLIP:");
  c.cnn_log = clip::train_clip(*c.cnn_clip, c.train.images, c.train.labels, c.captions, o, dev);

  const double chance = std::log(static_cast<double>(o.batch_size));
  plot::LinePlot p("Mini CLIP training loss: ViT vs CNN image encoder", "step",
                   "InfoNCE loss (running mean of 10 steps)");
  p.add_series("ViT", smooth(c.vit_log.losses, 10));
  p.add_series("CNN", smooth(c.cnn_log.losses, 10));
  p.add_hline(cat_str("chance: log ", o.batch_size), chance);
  p.add_hline("best possible", c.vit_log.loss_floor, "#2a9d8f");
  p.save(c.args.path("loss_curves.svg"));
  lesson::print(
      "\nThe loss cannot reach 0 here: a batch of {} holds about {} images per class, whose\n"
      "captions are interchangeable, so the best possible loss of these batches is about {:.2f}\n"
      "(chance: log {} = {:.2f}).",
      o.batch_size, o.batch_size / 10, c.vit_log.loss_floor, o.batch_size, chance);
  lesson::print("Figure: {}", c.args.path("loss_curves.svg"));
}

// ---- 6 ---------------------------------------------------------------------------------------
void compare_zero_shot(Comparison& c) {
  lesson::section("6. Zero-shot accuracy on held-out test images, and time");
  c.vit_eval = evaluate(*c.vit_clip, c.captions, c.test, c.args.device);
  c.cnn_eval = evaluate(*c.cnn_clip, c.captions, c.test, c.args.device);
  const double steps = static_cast<double>(c.topts.steps);
  lesson::print(
      "{} test images; prompts: one template (\"a photo of a ...\") and the\n"
      "5-template ensemble of lesson 05.\n",
      c.test.size());
  lesson::print(
      "  encoder | image params | train s | ms/step | final loss | 1 template | ensemble");
  lesson::print(
      "  --------+--------------+---------+---------+------------+------------+---------");
  auto row = [&](const char* name, const nn::Module& enc, const clip::TrainLog& log,
                 const Eval& e) {
    lesson::print("  {:<7} | {:12d} | {:7.1f} | {:7.1f} | {:10.3f} | {:10.1%} | {:8.1%}", name,
                  enc.num_parameters(), log.seconds, 1000.0 * log.seconds / steps, log.tail_mean(),
                  e.single, e.ensemble);
  };
  row("ViT", *c.vit_encoder, c.vit_log, c.vit_eval);
  row("CNN", *c.cnn_encoder, c.cnn_log, c.cnn_eval);
  lesson::print(
      "\n(Encoding the {} test images took {:.2f} s with the ViT, {:.2f} s with the CNN.)",
      c.test.size(), c.vit_eval.encode_seconds, c.cnn_eval.encode_seconds);
  // Accuracy (%) and time (s) are different units: one panel each, never one shared axis.
  plot::BarChart acc("Zero-shot accuracy", "", "accuracy (%), 5-template ensemble");
  acc.set_categories({"ViT + EOS text", "CNN + EOS text"});
  acc.add_series("zero-shot accuracy", {100 * c.vit_eval.ensemble, 100 * c.cnn_eval.ensemble});
  acc.set_value_labels(true, 1).set_ylim(0, 100);
  acc.set_size(400, 380);
  plot::BarChart time("Training time", "", "seconds");
  time.set_categories({"ViT + EOS text", "CNN + EOS text"});
  time.add_series("training time", {c.vit_log.seconds, c.cnn_log.seconds}, plot::palette(1));
  time.set_value_labels(true, 1);
  time.set_size(400, 380);
  plot::Panels b("ViT vs CNN image encoder, same training budget", 2);
  b.add(acc).add(time);
  b.save(c.args.path("comparison.svg"));
  lesson::print("Figure: {}", c.args.path("comparison.svg"));
}

// What the numbers mean, and the targets.
void what_each_encoder_brings(const Comparison& c) {
  const double gap = c.vit_eval.ensemble - c.cnn_eval.ensemble;
  lesson::print("\nThe {} is ahead by {:.1f} points at this budget.", gap >= 0 ? "ViT" : "CNN",
                100 * std::abs(gap));
  lesson::print(
      "What each encoder brings: convolutions build in what images are like (nearby pixels\n"
      "belong together, the same pattern can appear anywhere), so a CNN needs little data to\n"
      "get going. A ViT has to learn such things: it compares every patch with every other\n"
      "from the first layer on and only knows where a patch sits through its learned position\n"
      "embedding. In return it sees the whole image at once; with lots of data and compute\n"
      "that flexibility wins (CLIP's best encoders are ViTs). At this tiny scale the result\n"
      "depends on details (model widths, learning rate) and on the budget: try --steps,\n"
      "--patch and --vit-layers, and compare the time columns as well as the accuracy.");
  // Targets: the ViT should learn a useful shared space; we report honestly how it compares.
  const double target = c.args.quick ? 0.40 : 0.75;
  lesson::print("\nTarget: ViT zero-shot accuracy >= {:.0%}: {} ({:.1%}).", target,
                c.vit_eval.ensemble >= target ? "met" : "MISSED", c.vit_eval.ensemble);
  lesson::print("Target: CNN zero-shot accuracy >= {:.0%}: {} ({:.1%}).", target,
                c.cnn_eval.ensemble >= target ? "met" : "MISSED", c.cnn_eval.ensemble);
}

// ---- 7 ---------------------------------------------------------------------------------------
void where_the_vit_looks(const Comparison& c) {
  lesson::section("7. Where the ViT looks: CLS attention over the patches");
  const int64_t P = c.setup.vit.patch_size, G = c.vit_encoder->grid();
  const int64_t N = c.vit_encoder->num_patches();
  const int64_t show = std::min<int64_t>(6, c.test.size());
  const auto& names = data::fashion_mnist_classes();
  Tensor x = c.test.images.narrow(0, 0, show);
  c.vit_clip->eval();
  std::vector<float> a = c.vit_encoder->cls_attention(x.to(c.args.device)).cpu().to_vector<float>();
  // The figure: each test image, then the same image with its attention laid over it, each
  // patch's weight filling its P x P square (nearest, not smoothed: the model has one number
  // per patch). Each map is scaled to its own largest weight (printed under it): one image's
  // peak can be ten times another's, and a shared scale would leave the others flat.
  std::vector<Tensor> tiles;
  data::GridOptions grid;
  grid.scale = 3;
  grid.title = lesson::format(
      "Where the ViT looks: the CLS token's attention over the {}x{} patches (last layer, mean "
      "of the heads), over each test image",
      G, G);
  grid.colorbar = data::ColorBar{
      0.0, 1.0,
      "colour: attention weight as a fraction of the image's largest (printed under each map)"};
  std::string csv = "image,true_class,patch,patch_row,patch_col,weight\n";
  for (int64_t i = 0; i < show; ++i) {
    float mx = 1e-12f;
    for (int64_t p = 0; p < N; ++p) mx = std::max(mx, a[i * N + p]);
    std::vector<float> px(28 * 28);
    for (int64_t r = 0; r < 28; ++r)
      for (int64_t col = 0; col < 28; ++col) px[r * 28 + col] = a[i * N + (r / P) * G + col / P];
    const std::string name = names[c.test.labels[i].item<int64_t>()];
    tiles.push_back(x[i].clone());
    tiles.push_back(
        data::overlay_heatmap(x[i], Tensor::from_vector(px).reshape({28, 28}), 0.0, mx));
    grid.labels.push_back(name);
    grid.labels.push_back(lesson::format("largest {:.3f}", mx));
    for (int64_t p = 0; p < N; ++p)
      csv += lesson::format("{},{},{},{},{},{:.6g}\n", i, name, p, p / G, p % G, a[i * N + p]);
  }
  data::save_image_grid(tiles, 4, c.args.path("cls_attention.png"), grid);
  write_file_atomic(c.args.path("cls_attention_weights.csv"), csv, "lesson 07");
  lesson::print(
      "The last layer's attention weights of the CLS query over the {} patches\n"
      "(averaged over heads), test image 0 ({}), as a {}x{} grid:\n",
      N, names[c.test.labels[0].item<int64_t>()], G, G);
  if (G <= 7) {
    for (int64_t r = 0; r < G; ++r) {
      lesson::print_inline("   ");
      for (int64_t col = 0; col < G; ++col) lesson::print_inline(" {:.3f}", a[r * G + col]);
      lesson::print("");
    }
  }
  double self = 1.0;
  for (int64_t p = 0; p < N; ++p) self -= a[p];
  lesson::print(
      "\n(The remaining {:.3f} goes to the CLS token itself.) In the figure, each test image\n"
      "is followed by the same image with its attention map laid over it: yellow squares are\n"
      "the patches the CLS token read most, dark purple ones the least (each map scaled to its\n"
      "own largest weight, printed under it; uniform attention would be 1/{} = {:.3f}).\n"
      "Often, but not always, the all-black background patches get little weight: attention\n"
      "shows where the CLS token reads, not why.\nFigure: {} (weights in {})",
      self, N, 1.0 / N, c.args.path("cls_attention.png"), c.args.path("cls_attention_weights.csv"));
}

// ---- 8 ---------------------------------------------------------------------------------------
// The accuracies of both encoders for seeds --seed, --seed + 1, ...: the run above and, with
// --seeds N, N - 1 more trained silently the same way (the same draws from the generator, so
// each row is what `--seed s` alone prints).
struct SeedRow {
  uint64_t seed = 0;
  double vit = 0, cnn = 0;  // zero-shot accuracy, template ensemble
};

SeedRow train_and_evaluate_seed(const Comparison& c, uint64_t seed) {
  Setup s = c.setup;
  s.train.seed = seed;
  manual_seed(seed);  // what parse_args does before section 2 makes the ViT encoder
  auto vit_encoder = std::make_shared<clip::ViTEncoder>(s.vit);
  Models m = make_models(s, c.captions, vit_encoder, seed);
  clip::TrainOptions o = c.topts;
  o.seed = seed;
  o.log_every = 0;  // silent
  const Device dev = c.args.device;
  m.vit_clip->to(dev);
  m.cnn_clip->to(dev);
  clip::train_clip(*m.vit_clip, c.train.images, c.train.labels, c.captions, o, dev);
  clip::train_clip(*m.cnn_clip, c.train.images, c.train.labels, c.captions, o, dev);
  return {seed, evaluate(*m.vit_clip, c.captions, c.test, dev).ensemble,
          evaluate(*m.cnn_clip, c.captions, c.test, dev).ensemble};
}

std::vector<SeedRow> over_seeds(const Comparison& c) {
  lesson::section("8. One run is one draw: the comparison over seeds");
  std::vector<SeedRow> rows = {{c.args.seed, c.vit_eval.ensemble, c.cnn_eval.ensemble}};
  if (c.setup.seeds == 1) {
    // Measured at the defaults, seeds 0-4 (each row is what --seeds 5 prints for that seed), on
    // the GEMM ladder, the implicit-GEMM and the first-layer convolutions (2026-12-07, evening).
    lesson::print(
        "Everything above is one training run (seed {}). Another --seed draws other initial\n"
        "weights and other batches, and at this small scale the accuracies move with it. At\n"
        "the lesson's defaults (no flags), seeds 0-4 gave the ViT 75.2% to 81.3% (mean 78.1%)\n"
        "and the CNN 81.1% to 86.6% (mean 84.9%): the CNN was ahead on all five, by 4.5 to 9.4\n"
        "points. So the ranking holds at this budget, but read the size of the gap as a range,\n"
        "not as the one number above. Run with --seeds 5 to measure the spread yourself (five\n"
        "times the training time).",
        c.args.seed);
    return rows;
  }
  lesson::print("Training both models for {} more seed{} ({} steps each, silently)...\n",
                c.setup.seeds - 1, c.setup.seeds > 2 ? "s" : "", c.topts.steps);
  for (int k = 1; k < c.setup.seeds; ++k)
    rows.push_back(train_and_evaluate_seed(c, c.args.seed + static_cast<uint64_t>(k)));
  lesson::print("  seed |    ViT |    CNN | CNN - ViT");
  std::vector<double> vit, cnn;
  for (const SeedRow& r : rows) {
    lesson::print("  {:4d} | {:6.1%} | {:6.1%} | {:+6.1f} points", r.seed, r.vit, r.cnn,
                  100 * (r.cnn - r.vit));
    vit.push_back(r.vit);
    cnn.push_back(r.cnn);
  }
  auto summary = [](const std::vector<double>& v) {
    const lesson::Spread sp = lesson::spread_of(v);
    return lesson::format("mean {:.1%}, standard deviation {:.1f} points, range {:.1%} to {:.1%}",
                          sp.mean, 100 * sp.sd, sp.lo, sp.hi);
  };

  lesson::print("\n  ViT: {}\n  CNN: {}", summary(vit), summary(cnn));
  const auto cnn_ahead =
      std::count_if(rows.begin(), rows.end(), [](const SeedRow& r) { return r.cnn > r.vit; });
  lesson::print("  the CNN is ahead on {} of {} seeds.", cnn_ahead, rows.size());
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    const lesson::Args args = lesson::parse_args(
        argc, argv, "07_vit_clip",
        "the mini CLIP with a Vision Transformer image encoder vs the CNN encoder",
        lesson::kUsesSteps | lesson::kUsesData,
        {{"--patch N", "ViT patch size, dividing 28 (default 7: a 4x4 grid of 16 patches)"},
         {"--vit-layers N", "transformer layers of the ViT (default 2)"},
         {"--batch N", "batch size for both models (default 128)"},
         {"--lr X", "peak learning rate for both models (default 5e-3)"},
         {"--class-targets 0|1",
          "1: every caption of an image's class counts as a match in the loss "
          "(clip::class_target_clip_loss); 0: CLIP's loss (default 0)"},
         {"--seeds",
          "N > 1: also train the comparison for the next N - 1 seeds and report the mean and "
          "spread of both accuracies (each seed costs one more training of both models; "
          "default 1)"}});
    Comparison c = show_data(args);
    patches_to_tokens(c);
    cls_and_eos_pooling(c);
    build_models(c);
    train_both(c);
    compare_zero_shot(c);
    what_each_encoder_brings(c);
    where_the_vit_looks(c);
    const std::vector<SeedRow> seeds = over_seeds(c);

    lesson::Result result;
    result.add("vit_acc", c.vit_eval.ensemble)
        .add("cnn_acc", c.cnn_eval.ensemble)
        .add("vit_single_acc", c.vit_eval.single)
        .add("cnn_single_acc", c.cnn_eval.single)
        .add("vit_train_s", c.vit_log.seconds)
        .add("cnn_train_s", c.cnn_log.seconds)
        .add("vit_final_loss", c.vit_log.tail_mean())
        .add("cnn_final_loss", c.cnn_log.tail_mean())
        .add("test_images", static_cast<double>(c.test.size()))
        .add("steps", static_cast<double>(c.topts.steps));
    if (seeds.size() > 1) {
      double vit = 0, cnn = 0;
      for (const SeedRow& r : seeds) {
        vit += r.vit / static_cast<double>(seeds.size());
        cnn += r.cnn / static_cast<double>(seeds.size());
      }
      result.add("seeds", static_cast<double>(seeds.size()))
          .add("vit_acc_mean", vit)
          .add("cnn_acc_mean", cnn);
    }
    result.print();
  });
}
