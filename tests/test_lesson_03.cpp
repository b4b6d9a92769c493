// Lesson 03 (siamese embeddings) in --quick mode: k-NN accuracy in embedding space on held-out
// test images, checkpoint reload gives identical embeddings, figures and checkpoints written.
#include <string>

#include "lesson_runner.h"
#include "mmgrad/data/fashion_mnist.h"

using lesson_test::is_svg;
using lesson_test::out_dir;
using mmgrad::testing::read_text;

TEST_CASE("lesson 03: quick run, k-NN accuracy on held-out test images") {
  if (!mmgrad::data::fashion_mnist_available()) {
    MESSAGE("[skipped: Fashion-MNIST not installed (" << mmgrad::data::fashion_mnist_dir()
                                                      << "), lesson 03]");
    return;
  }
  lesson_test::Run r = lesson_test::run_lesson("03_siamese_embeddings", "--quick");
  INFO(r.output);
  REQUIRE(r.status == 0);
  REQUIRE(r.has("knn_acc"));
  CHECK(r.has("seconds"));
  // quick mode: 2 epochs on 2000 training images, evaluated on the first 1000 TEST images
  // (never trained on) against the training images as the labelled reference set
  CHECK(r["test_images"] == 1000.0);
  CHECK(r["knn_acc"] >= 0.70);
  CHECK(r["knn_acc"] <= 1.0);
  // the embedding space learned the pair task on test pairs
  CHECK(r["cos_same"] > r["cos_diff"] + 0.3);
  // a model reloaded from the checkpoint gives bit-identical embeddings
  CHECK(r["reload_diff"] == 0.0);
  CHECK(r.output.find("identical: the optimizer state was restored") != std::string::npos);

  const std::string dir = out_dir("03_siamese_embeddings");
  for (const char* f :
       {"embeddings_epoch_0.svg", "embeddings_epoch_1.svg", "embeddings_epoch_2.svg"}) {
    INFO(f);
    std::string svg = read_text(dir + "/" + f);
    CHECK(is_svg(svg));
    CHECK(svg.find("Sneaker") != std::string::npos);  // the legend names the classes
  }
  CHECK(is_svg(read_text(dir + "/pair_similarity.svg")));
  for (const char* f : {"samples.png", "knn_predictions.png"}) {
    INFO(f);
    CHECK(read_text(dir + "/" + f).rfind("\x89PNG", 0) == 0);
  }
  for (const char* f : {"epoch_1.ckpt", "epoch_2.ckpt"}) {
    INFO(f);
    CHECK(read_text(dir + "/checkpoints/" + f).rfind("MMGRADCK", 0) == 0);
  }
}

TEST_CASE("lesson 03: a bad setting is a clear error with status 1") {
  lesson_test::Run r = lesson_test::run_lesson("03_siamese_embeddings", "--quick --train 10");
  CHECK(r.status == 1);
  CHECK(r.output.find("--train") != std::string::npos);
  CHECK(r.output.find("result:") == std::string::npos);
}
