// Lesson 07: the mini CLIP with a Vision Transformer image encoder, against the CNN encoder.
//
// Lessons 04-06 used a CNN to turn an image into a vector. CLIP's best models use a Vision
// Transformer (ViT) instead, and CLIP's text encoder reads its caption summary from the EOS
// token. Here we build both and train two mini CLIPs that differ only in the image encoder.
//
// What you will see:
//   1. The data: Fashion-MNIST images and their template captions (as in lesson 04).
//   2. Patches: a 28x28 image cut into a 4x4 grid of 7x7 patches; each patch becomes one token
//      (patches.png), and the shapes of every step of the patch embedding.
//   3. CLS and EOS pooling: how a whole sequence of token states becomes one vector. The image
//      side reads a learned extra token (CLS); the text side reads the end-of-sequence token,
//      which under a causal mask is the only position that has seen the whole caption.
//   4. The two models: ViT + text transformer, and CNN (lessons/04_mini_clip/clip) + the same text
//      transformer; their sizes.
//   5. Training both with the same budget: same data, steps, batch size, optimizer and
//      schedule (loss_curves.svg).
//   6. Zero-shot accuracy on the 10,000 test images (which training never sees) and training
//      time, side by side (comparison.svg).
//   7. Where the ViT looks: the attention of the CLS token over the 16 patches for a few test
//      images (cls_attention.png).
//
// The last line is `result: vit_acc=... cnn_acc=... vit_train_s=... cnn_train_s=... ...`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "04_mini_clip/clip.h"
#include "07_vit_clip/vit_clip.h"
#include "common/lesson.h"
#include "data/fashion_mnist.h"
#include "data/image.h"
#include "data/loader.h"
#include "metrics/metrics.h"
#include "mmgrad.h"
#include "plot/figure.h"

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
    s.vit.width = 32;
    s.vit.embed_dim = 32;
    s.text.width = 32;
    s.text.embed_dim = 32;
    s.train.steps = 150;
    s.train.batch_size = 128;
    s.train.lr = 5e-3;
    s.train.warmup_steps = 10;
  } else {
    s.vit.width = 64;
    s.vit.embed_dim = 64;
    s.text.width = 64;
    s.text.embed_dim = 64;
    s.train.steps = 300;
    s.train.batch_size = 128;
    s.train.lr = 5e-3;
    s.train.warmup_steps = 20;
  }
  // Both encoders map into the text encoder's space: the CNN projects to the same width.
  s.cnn.embed_dim = s.text.embed_dim;
  s.vit.layers = args.get_int("--vit-layers", static_cast<int>(s.vit.layers));
  s.train.steps = args.steps_or(static_cast<int>(s.train.steps));
  s.train.batch_size = args.get_int("--batch", static_cast<int>(s.train.batch_size));
  s.train.lr = args.get_double("--lr", s.train.lr);
  s.train.class_targets = args.get_int("--class-targets", s.train.class_targets ? 1 : 0) != 0;
  s.train.warmup_steps = std::min(s.train.warmup_steps, s.train.steps);
  MMGRAD_CHECK(s.vit.patch_size > 0 && 28 % s.vit.patch_size == 0, "--patch ", s.vit.patch_size,
               ": the patch size must divide 28 (1, 2, 4, 7, 14 or 28)");
  MMGRAD_CHECK(s.vit.layers >= 1 && s.vit.layers <= 12, "--vit-layers ", s.vit.layers,
               ": expected 1 to 12 layers");
  MMGRAD_CHECK(s.train.steps >= 1, "--steps ", s.train.steps, ": need at least one step");
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

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Args args = lesson::parse_args(
        argc, argv, "07_vit_clip",
        "the mini CLIP with a Vision Transformer image encoder vs the CNN encoder",
        {{"--patch", "ViT patch size, dividing 28 (default 7: a 4x4 grid of 16 patches)"},
         {"--vit-layers", "transformer layers of the ViT (default 2)"},
         {"--batch", "batch size for both models (default 128)"},
         {"--lr", "peak learning rate for both models (default 5e-3)"},
         {"--class-targets",
          "1: every caption of an image's class counts as a match in the loss "
          "(clip::class_target_clip_loss); 0: CLIP's loss (default 0)"}});
    const Setup setup = make_setup(args);

    // 1. The data ---------------------------------------------------------------------------
    lesson::section("1. The data: Fashion-MNIST images with template captions");
    clip::CaptionBank captions = clip::make_fmnist_captions();
    data::Dataset train =
        data::load_fashion_mnist(data::Split::Train, args.data, setup.train_limit);
    data::Dataset test = data::load_fashion_mnist(data::Split::Test, args.data, setup.test_limit);
    std::printf("%lld training images, %lld test images (never used for training).\n",
                static_cast<long long>(train.size()), static_cast<long long>(test.size()));
    std::printf("Captions: %lld classes x %lld templates, e.g. \"%s\", \"%s\".\n",
                static_cast<long long>(captions.num_classes()),
                static_cast<long long>(captions.num_templates()), captions.text(7, 0).c_str(),
                captions.text(9, 1).c_str());
    std::printf("Vocabulary: %lld tokens (4 special: <pad> <bos> <eos> <unk>).\n",
                static_cast<long long>(captions.tokenizer.vocab_size()));

    // 2. Patches ----------------------------------------------------------------------------
    lesson::section("2. From pixels to tokens: patches");
    auto vit_encoder = std::make_shared<clip::ViTEncoder>(setup.vit);
    const int64_t P = setup.vit.patch_size, G = vit_encoder->grid(), N = vit_encoder->num_patches();
    std::printf(
        "A transformer works on a sequence of vectors. A ViT makes one from an image by cutting\n"
        "it into non-overlapping %lldx%lld patches: a 28x28 image gives a %lldx%lld grid of %lld\n"
        "patches, read row by row like words in a sentence. Each patch (%lld pixels) is mapped\n"
        "to a %lld-d token by the same linear map. A Conv2d whose kernel and stride both equal\n"
        "the patch size is exactly that map: each output position sees one patch, no overlap.\n\n",
        static_cast<long long>(P), static_cast<long long>(P), static_cast<long long>(G),
        static_cast<long long>(G), static_cast<long long>(N), static_cast<long long>(P * P),
        static_cast<long long>(setup.vit.width));
    {
      NoGradGuard no_grad;
      Tensor x = test.images.narrow(0, 0, 1);  // one test image [1, 1, 28, 28]
      auto& pe = *vit_encoder->patch_embed;
      Tensor conv = pe.proj->forward(x);
      Tensor seq = conv.flatten(2).transpose(1, 2);
      Tensor with_cls = pe.forward(x);
      std::printf("  image                         %s\n", describe(x).c_str());
      std::printf("  Conv2d(1, %lld, k=%lld, s=%lld)       %s   one %lld-d vector per patch\n",
                  static_cast<long long>(setup.vit.width), static_cast<long long>(P),
                  static_cast<long long>(P), describe(conv).c_str(),
                  static_cast<long long>(setup.vit.width));
      std::printf("  flatten(2).transpose(1, 2)    %s   a sequence of %lld patch tokens\n",
                  describe(seq).c_str(), static_cast<long long>(N));
      std::printf("  prepend CLS, add positions    %s   the transformer's input\n\n",
                  describe(with_cls).c_str());
      // The patches of a few test images, each drawn as its own tile in a G x G grid.
      std::vector<Tensor> tiles;
      for (int64_t r = 0; r < G; ++r)
        for (int64_t c = 0; c < G; ++c)
          tiles.push_back(test.images[0].narrow(1, r * P, P).narrow(2, c * P, P).contiguous());
      data::save_image_grid(tiles, G, args.path("patches.png"), {}, std::max<int>(2, 56 / P));
    }
    std::printf(
        "Attention is blind to order, so a learned position embedding (one vector per slot) is\n"
        "added to every token: without it the ViT could not tell a patch at the top from the same\n"
        "patch at the bottom.\n");
    std::printf("Figure: %s (test image 0, class %s, cut into its %lld patches)\n",
                args.path("patches.png").c_str(),
                data::fashion_mnist_classes()[test.labels[0].item<int64_t>()].c_str(),
                static_cast<long long>(N));

    // 3. CLS and EOS pooling ------------------------------------------------------------------
    lesson::section("3. One vector per input: CLS pooling (images) and EOS pooling (text)");
    std::printf(
        "Both encoders output one state per token, but CLIP compares ONE vector per image with\n"
        "ONE vector per caption. Lesson 04's text encoder averaged the states (mean pooling).\n"
        "CLIP does it differently:\n\n"
        "  Image side, CLS pooling: an extra learned token, CLS, is put in front of the patches.\n"
        "  It carries no pixels of its own; in every layer it attends to all patches and gathers\n"
        "  what it needs. Its final state (position 0) is the image's summary.\n\n"
        "  Text side, EOS pooling: the caption is [BOS] words [EOS] [PAD]... and the encoder uses\n"
        "  a causal mask (position t attends to positions <= t only, as in GPT). Then the EOS\n"
        "  token is the only position that has seen every word, so its state is the caption's\n"
        "  summary. Padding after EOS is masked out and never read.\n\n");
    {
      const std::string text = captions.text(9, 0);
      std::vector<int64_t> ids = captions.encode({text}).to_vector<int64_t>();
      std::printf("  \"%s\" ->\n  ", text.c_str());
      int64_t eos_at = -1;
      for (size_t t = 0; t < ids.size(); ++t) {
        std::printf("%s ", captions.tokenizer.id_to_token(ids[t]).c_str());
        if (ids[t] == data::Tokenizer::kEos && eos_at < 0) eos_at = static_cast<int64_t>(t);
      }
      std::printf("\n  The text encoder reads the state at position %lld (the EOS token).\n",
                  static_cast<long long>(eos_at));
    }

    // 4. The two models -----------------------------------------------------------------------
    lesson::section("4. Two mini CLIPs that differ only in the image encoder");
    clip::TextEncoderOptions text_opts = setup.text;
    text_opts.vocab_size = captions.tokenizer.vocab_size();
    text_opts.max_len = captions.max_len;
    // Same seed before each model: the two text encoders start from the same weights.
    manual_seed(args.seed);
    auto vit_text = std::make_shared<clip::TextEncoder>(text_opts);
    auto vit_clip = std::make_shared<clip::MiniCLIP>(vit_encoder, vit_text);
    manual_seed(args.seed);
    auto cnn_text = std::make_shared<clip::TextEncoder>(text_opts);
    auto cnn_encoder = std::make_shared<clip::ImageEncoder>(setup.cnn);
    auto cnn_clip = std::make_shared<clip::MiniCLIP>(cnn_encoder, cnn_text);
    std::printf("ViT image encoder:  %s\n  %lld parameters\n", setup.vit.str().c_str(),
                static_cast<long long>(vit_encoder->num_parameters()));
    std::printf("CNN image encoder:  %s\n  %lld parameters\n", setup.cnn.str().c_str(),
                static_cast<long long>(cnn_encoder->num_parameters()));
    std::printf("Text encoder (both): %s\n  %lld parameters\n", text_opts.str().c_str(),
                static_cast<long long>(vit_text->num_parameters()));

    // 5. Training -----------------------------------------------------------------------------
    lesson::section("5. Training both with the same budget");
    clip::TrainOptions topts = setup.train;
    topts.log_every = std::max<int64_t>(1, topts.steps / 3);
    std::printf(
        "Recipe for both: %s\n(each image gets a caption of its class under a random "
        "template; symmetric InfoNCE with a learnable temperature)\n\n",
        topts.str().c_str());
    vit_clip->to(args.device);
    cnn_clip->to(args.device);
    std::printf("ViT CLIP:\n");
    clip::TrainLog vit_log =
        clip::train_clip(*vit_clip, train.images, train.labels, captions, topts, args.device);
    std::printf("CNN CLIP:\n");
    clip::TrainLog cnn_log =
        clip::train_clip(*cnn_clip, train.images, train.labels, captions, topts, args.device);
    {
      plot::LinePlot p("Mini CLIP training loss: ViT vs CNN image encoder", "step",
                       "InfoNCE loss (running mean of 10 steps)");
      p.add_series("ViT", smooth(vit_log.losses, 10));
      p.add_series("CNN", smooth(cnn_log.losses, 10));
      p.add_hline(cat_str("chance: log ", topts.batch_size),
                  std::log(static_cast<double>(topts.batch_size)));
      p.add_hline("best possible", vit_log.loss_floor, "#2a9d8f");
      p.save(args.path("loss_curves.svg"));
    }
    std::printf(
        "\nThe loss cannot reach 0 here: a batch of %lld holds about %lld images per class, whose\n"
        "captions are interchangeable, so the best possible loss of these batches is about %.2f\n"
        "(chance: log %lld = %.2f).\n",
        static_cast<long long>(topts.batch_size), static_cast<long long>(topts.batch_size / 10),
        vit_log.loss_floor, static_cast<long long>(topts.batch_size),
        std::log(static_cast<double>(topts.batch_size)));
    std::printf("Figure: %s\n", args.path("loss_curves.svg").c_str());

    // 6. Zero-shot accuracy and time -------------------------------------------------------------
    lesson::section("6. Zero-shot accuracy on held-out test images, and time");
    Eval vit_eval = evaluate(*vit_clip, captions, test, args.device);
    Eval cnn_eval = evaluate(*cnn_clip, captions, test, args.device);
    const double steps = static_cast<double>(topts.steps);
    std::printf(
        "%lld test images; prompts: one template (\"a photo of a ...\") and the\n"
        "5-template ensemble of lesson 05.\n\n",
        static_cast<long long>(test.size()));
    std::printf(
        "  encoder | image params | train s | ms/step | final loss | 1 template | ensemble\n");
    std::printf(
        "  --------+--------------+---------+---------+------------+------------+---------\n");
    auto row = [&](const char* name, const nn::Module& enc, const clip::TrainLog& log,
                   const Eval& e) {
      std::printf("  %-7s | %12lld | %7.1f | %7.1f | %10.3f | %9.1f%% | %7.1f%%\n", name,
                  static_cast<long long>(enc.num_parameters()), log.seconds,
                  1000.0 * log.seconds / steps, log.tail_mean(), 100 * e.single, 100 * e.ensemble);
    };
    row("ViT", *vit_encoder, vit_log, vit_eval);
    row("CNN", *cnn_encoder, cnn_log, cnn_eval);
    std::printf(
        "\n(Encoding the %lld test images took %.2f s with the ViT, %.2f s with the CNN.)\n",
        static_cast<long long>(test.size()), vit_eval.encode_seconds, cnn_eval.encode_seconds);
    {
      plot::BarChart b("ViT vs CNN image encoder, same training budget", "",
                       "zero-shot accuracy (%) / training time (s)");
      b.set_categories({"ViT + EOS text", "CNN + EOS text"});
      b.add_series("zero-shot accuracy, %", {100 * vit_eval.ensemble, 100 * cnn_eval.ensemble});
      b.add_series("training time, s", {vit_log.seconds, cnn_log.seconds});
      b.set_value_labels(true, 1);
      b.save(args.path("comparison.svg"));
    }
    std::printf("Figure: %s\n", args.path("comparison.svg").c_str());

    const double gap = vit_eval.ensemble - cnn_eval.ensemble;
    std::printf("\nThe %s is ahead by %.1f points at this budget.\n", gap >= 0 ? "ViT" : "CNN",
                100 * std::abs(gap));
    std::printf(
        "What each encoder brings: convolutions build in what images are like (nearby pixels\n"
        "belong together, the same pattern can appear anywhere), so a CNN needs little data to\n"
        "get going. A ViT has to learn such things: it compares every patch with every other\n"
        "from the first layer on and only knows where a patch sits through its learned position\n"
        "embedding. In return it sees the whole image at once; with lots of data and compute\n"
        "that flexibility wins (CLIP's best encoders are ViTs). At this tiny scale the result\n"
        "depends on details (model widths, learning rate) and on the budget: try --steps,\n"
        "--patch and --vit-layers, and compare the time columns as well as the accuracy.\n");

    // Targets: the ViT should learn a useful shared space; we report honestly how it compares.
    const double target = args.quick ? 0.40 : 0.75;
    std::printf("\nTarget: ViT zero-shot accuracy >= %.0f%%: %s (%.1f%%).\n", 100 * target,
                vit_eval.ensemble >= target ? "met" : "MISSED", 100 * vit_eval.ensemble);
    std::printf("Target: CNN zero-shot accuracy >= %.0f%%: %s (%.1f%%).\n", 100 * target,
                cnn_eval.ensemble >= target ? "met" : "MISSED", 100 * cnn_eval.ensemble);

    // 7. Where the ViT looks ------------------------------------------------------------------
    lesson::section("7. Where the ViT looks: CLS attention over the patches");
    {
      const int64_t show = std::min<int64_t>(6, test.size());
      Tensor x = test.images.narrow(0, 0, show);
      vit_clip->eval();
      Tensor att = vit_encoder->cls_attention(x.to(args.device)).cpu();  // [show, N]
      std::vector<float> a = att.to_vector<float>();
      std::vector<Tensor> tiles;
      std::vector<std::string> labels;
      for (int64_t i = 0; i < show; ++i) {
        // The attention of image i as a G x G picture, scaled so its largest weight is white,
        // each patch's weight filling its P x P square.
        float mx = 1e-12f;
        for (int64_t p = 0; p < N; ++p) mx = std::max(mx, a[i * N + p]);
        std::vector<float> px(28 * 28);
        for (int64_t r = 0; r < 28; ++r)
          for (int64_t c = 0; c < 28; ++c) px[r * 28 + c] = a[i * N + (r / P) * G + c / P] / mx;
        tiles.push_back(x[i].clone());
        tiles.push_back(Tensor::from_vector(px).reshape({1, 28, 28}));
        const std::string cls = data::fashion_mnist_classes()[test.labels[i].item<int64_t>()];
        labels.push_back(cls);
        labels.push_back("CLS attention");
      }
      data::save_image_grid(tiles, 4, args.path("cls_attention.png"), labels, 3);
      std::printf(
          "The last layer's attention weights of the CLS query over the %lld patches\n"
          "(averaged over heads), test image 0 (%s), as a %lldx%lld grid:\n\n",
          static_cast<long long>(N),
          data::fashion_mnist_classes()[test.labels[0].item<int64_t>()].c_str(),
          static_cast<long long>(G), static_cast<long long>(G));
      if (G <= 7) {
        for (int64_t r = 0; r < G; ++r) {
          std::printf("   ");
          for (int64_t c = 0; c < G; ++c) std::printf(" %.3f", a[r * G + c]);
          std::printf("\n");
        }
      }
      double self = 1.0;
      for (int64_t p = 0; p < N; ++p) self -= a[p];
      std::printf(
          "\n(The remaining %.3f goes to the CLS token itself.) In the figure, each test image\n"
          "is followed by its attention map: bright squares are the patches the CLS token read\n"
          "most; the all-black background patches usually get little weight.\nFigure: %s\n",
          self, args.path("cls_attention.png").c_str());
    }

    lesson::Result()
        .add("vit_acc", vit_eval.ensemble)
        .add("cnn_acc", cnn_eval.ensemble)
        .add("vit_single_acc", vit_eval.single)
        .add("cnn_single_acc", cnn_eval.single)
        .add("vit_train_s", vit_log.seconds)
        .add("cnn_train_s", cnn_log.seconds)
        .add("vit_final_loss", vit_log.tail_mean())
        .add("cnn_final_loss", cnn_log.tail_mean())
        .add("test_images", static_cast<double>(test.size()))
        .add("steps", static_cast<double>(topts.steps))
        .print();
  });
}
