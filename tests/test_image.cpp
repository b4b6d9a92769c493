// Images: PNG save/load round trips, bilinear resize against hand-computed values (the values
// PyTorch's F.interpolate(mode="bilinear", align_corners=False) gives), corrupt files, and
// labelled image grids decoded back with stb_image.
#include <doctest/doctest.h>
#include <stb/stb_image.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "file_test_util.h"
#include "mmgrad/data/image.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;
using namespace mmgrad::data;
namespace fs = std::filesystem;
using mmgrad::testing::read_bytes;
using mmgrad::testing::TempDir;
using mmgrad::testing::write_bytes;

namespace {

// Decoded with stb_image directly (not through our loader): width, height, RGB bytes.
struct Decoded {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
  const uint8_t* at(int y, int x) const {
    return rgb.data() + (static_cast<size_t>(y) * w + x) * 3;
  }
};
Decoded decode_rgb(const std::string& path) {
  Decoded d;
  int c = 0;
  unsigned char* p = stbi_load(path.c_str(), &d.w, &d.h, &c, 3);
  REQUIRE(p != nullptr);
  d.rgb.assign(p, p + static_cast<size_t>(d.w) * d.h * 3);
  stbi_image_free(p);
  return d;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

}  // namespace

TEST_CASE("image: PNG round trip for RGB, grey and RGBA, values quantised to bytes") {
  TempDir d("image");
  Tensor rgb = Tensor::rand({3, 5, 7}, kFloat32, nullptr);
  save_image(rgb, d.file("rgb.png"));
  Tensor back = load_image(d.file("rgb.png"));
  CHECK(back.shape() == Shape{3, 5, 7});
  CHECK(back.dtype() == kFloat32);
  std::vector<float> a = rgb.to_vector<float>(), b = back.to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) CHECK(std::abs(a[i] - b[i]) <= 0.5f / 255 + 1e-6f);

  Tensor grey = Tensor::rand({4, 6}, kFloat64, nullptr);  // [H, W]
  save_image(grey, d.file("sub/dir/grey.png"));           // parent folders are created
  Tensor g1 = load_image(d.file("sub/dir/grey.png"));
  CHECK(g1.shape() == Shape{1, 4, 6});
  Tensor g3 = load_image(d.file("sub/dir/grey.png"), 3);  // grey -> RGB: three equal planes
  CHECK(g3.shape() == Shape{3, 4, 6});
  CHECK(g3.select(0, 0).to_vector<float>() == g3.select(0, 2).to_vector<float>());
  CHECK(g3.select(0, 1).to_vector<float>() == g1.select(0, 0).to_vector<float>());

  Tensor rgba = Tensor::rand({4, 3, 3}, kFloat32, nullptr);
  save_image(rgba, d.file("rgba.png"));
  CHECK(load_image(d.file("rgba.png")).shape() == Shape{4, 3, 3});
  CHECK(load_image(d.file("rgba.png"), 1).shape() == Shape{1, 3, 3});

  // Out-of-range values are clamped; exact 0 and 1 survive.
  Tensor ext = Tensor::from_vector({-1.0, 0.0, 1.0, 2.5}, {1, 2, 2}, kFloat32);
  save_image(ext, d.file("clamp.png"));
  CHECK(load_image(d.file("clamp.png")).to_vector<float>() == std::vector<float>{0, 0, 1, 1});

  // A non-contiguous view saves what it shows (the transpose of the stored data).
  Tensor base = Tensor::from_vector({0.0, 1.0, 0.0, 0.0, 0.0, 0.0}, {2, 3}, kFloat32);
  save_image(base.t(), d.file("t.png"));
  Tensor tb = load_image(d.file("t.png"));
  CHECK(tb.shape() == Shape{1, 3, 2});
  CHECK(tb.to_vector<float>() == std::vector<float>{0, 0, 1, 0, 0, 0});

  // JPEG is lossy but close.
  Tensor flat = Tensor::full({3, 16, 16}, 0.5, kFloat32);
  save_image(flat, d.file("flat.jpg"));
  CHECK(load_image(d.file("flat.jpg")).mean().item() == doctest::Approx(0.5).epsilon(0.02));

  // No temporary files are left behind.
  for (auto& e : fs::recursive_directory_iterator(d.path))
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("image: save_image rejects bad input") {
  TempDir d("image");
  CHECK_THROWS_WITH_AS(save_image(Tensor::zeros({2, 4, 4}), d.file("a.png")),
                       doctest::Contains("1, 3 or 4 channels"), Error);
  CHECK_THROWS_WITH_AS(save_image(Tensor::zeros({4, 4}, kInt64), d.file("a.png")),
                       doctest::Contains("float"), Error);
  CHECK_THROWS_WITH_AS(save_image(Tensor::zeros({1, 1, 4, 4}), d.file("a.png")),
                       doctest::Contains("[C, H, W]"), Error);
  CHECK_THROWS_WITH_AS(save_image(Tensor::zeros({4, 4}), d.file("a.gif")),
                       doctest::Contains(".png or .jpg"), Error);
  CHECK_THROWS_WITH_AS(save_image(Tensor::zeros({0, 4}), d.file("a.png")),
                       doctest::Contains("save_image"), Error);
  Tensor w = Tensor::zeros({4, 4}).requires_grad_();
  CHECK_THROWS_WITH_AS(save_image(w, d.file("a.png")), doctest::Contains("detach"), Error);
}

TEST_CASE("image: unreadable, corrupt and truncated files give clear errors") {
  TempDir d("image");
  CHECK_THROWS_WITH_AS(load_image(d.file("missing.png")), doctest::Contains("cannot open"), Error);
  std::ofstream(d.file("text.png")) << "this is not an image at all";
  std::string msg;
  try {
    load_image(d.file("text.png"));
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("load_image") != std::string::npos);
  CHECK(msg.find("text.png") != std::string::npos);
  CHECK(msg.find("cannot decode") != std::string::npos);

  save_image(Tensor::rand({3, 32, 32}, kFloat32, nullptr), d.file("ok.png"));
  std::vector<uint8_t> png = read_bytes(d.file("ok.png"));
  // Cut in the middle of the image data.
  write_bytes(d.file("cut.png"), std::vector<uint8_t>(png.begin(), png.begin() + png.size() / 2));
  CHECK_THROWS_WITH_AS(load_image(d.file("cut.png")), doctest::Contains("cannot decode"), Error);
  // Damage the PNG signature.
  std::vector<uint8_t> sig = png;
  sig[1] = 'X';
  write_bytes(d.file("sig.png"), sig);
  CHECK_THROWS_WITH_AS(load_image(d.file("sig.png")), doctest::Contains("cannot decode"), Error);
  // Damage the header chunk (its CRC no longer matches; stb also rejects a 0 width).
  std::vector<uint8_t> hdr = png;
  for (int i = 16; i < 20; ++i) hdr[i] = 0;  // IHDR width = 0
  write_bytes(d.file("hdr.png"), hdr);
  CHECK_THROWS_WITH_AS(load_image(d.file("hdr.png")), doctest::Contains("cannot decode"), Error);
  write_bytes(d.file("empty.png"), {});
  CHECK_THROWS_WITH_AS(load_image(d.file("empty.png")), doctest::Contains("cannot decode"), Error);
  CHECK_THROWS_WITH_AS(load_image(d.file("ok.png"), 5), doctest::Contains("channels"), Error);
}

TEST_CASE("image: bilinear resize matches hand-computed align_corners=False values") {
  // 2x2 -> 4x4 (upscale by 2). Output pixel centres map to input x = 0.5 * (i + 0.5) - 0.5 =
  // -0.25 (clamped to 0), 0.25, 0.75, 1.25 (-> last pixel), so a row [a, b] becomes
  // [a, 0.75a + 0.25b, 0.25a + 0.75b, b]; rows mix the same way.
  Tensor x = Tensor::from_vector({0.0, 1.0, 2.0, 3.0}, {1, 2, 2}, kFloat32);
  Tensor up = resize_bilinear(x, 4, 4);
  CHECK(up.shape() == Shape{1, 4, 4});
  check_close(up.to_vector<double>(),
              {0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3},
              1e-6);
  // 4x4 -> 2x2: input x = 2 * (i + 0.5) - 0.5 = 0.5, 2.5: each output is the mean of a 2x2 block.
  Tensor y = Tensor::arange(0, 16, 1, kFloat64).reshape({1, 4, 4});
  check_close(resize_bilinear(y, 2, 2).to_vector<double>(), {2.5, 4.5, 10.5, 12.5}, 1e-12);
  // 1x3 -> 1x2: x = 1.5 * (i + 0.5) - 0.5 = 0.25, 1.75.
  Tensor z = Tensor::from_vector({0.0, 1.0, 2.0}, {1, 1, 3}, kFloat64);
  check_close(resize_bilinear(z, 1, 2).to_vector<double>(), {0.25, 1.75}, 1e-12);
  // 1x1 -> 2x3: a constant.
  check_close(resize_bilinear(Tensor::full({1, 1, 1}, 0.7, kFloat64), 2, 3).to_vector<double>(),
              std::vector<double>(6, 0.7), 1e-12);
  // Same size: unchanged.
  Tensor r = Tensor::rand({3, 5, 6}, kFloat64, nullptr);
  check_close(resize_bilinear(r, 5, 6).to_vector<double>(), r.to_vector<double>(), 1e-12);
}

TEST_CASE("image: resize on batches, views and float32 vs float64, bad input") {
  Tensor b = Tensor::rand({2, 3, 7, 5}, kFloat64, nullptr);
  Tensor rb = resize_bilinear(b, 4, 9);
  CHECK(rb.shape() == Shape{2, 3, 4, 9});
  // Each image of the batch resizes as on its own.
  check_close(rb.select(0, 1).contiguous().to_vector<double>(),
              resize_bilinear(b.select(0, 1), 4, 9).to_vector<double>(), 1e-12);
  // A transposed view resizes what it shows.
  Tensor v = b.select(0, 0).transpose(1, 2);  // [3, 5, 7] non-contiguous
  check_close(resize_bilinear(v, 3, 3).to_vector<double>(),
              resize_bilinear(v.contiguous(), 3, 3).to_vector<double>(), 1e-12);
  // float32 agrees with float64.
  check_close(resize_bilinear(b.to(kFloat32), 11, 3).to_vector<double>(),
              resize_bilinear(b, 11, 3).to_vector<double>(), 1e-6);

  CHECK_THROWS_WITH_AS(resize_bilinear(Tensor::zeros({4, 4}), 2, 2),
                       doctest::Contains("resize_bilinear"), Error);
  CHECK_THROWS_WITH_AS(resize_bilinear(Tensor::zeros({1, 4, 4}, kInt64), 2, 2),
                       doctest::Contains("float32 or float64"), Error);
  CHECK_THROWS_WITH_AS(resize_bilinear(Tensor::zeros({1, 4, 4}), 0, 2),
                       doctest::Contains("positive"), Error);
  Tensor w = Tensor::zeros({1, 4, 4}).requires_grad_();
  CHECK_THROWS_WITH_AS(resize_bilinear(w, 2, 2), doctest::Contains("requires grad"), Error);
}

TEST_CASE("image: grid PNG has the documented size, the tiles and drawn labels") {
  TempDir d("image");
  std::vector<Tensor> imgs;
  for (int i = 0; i < 5; ++i) imgs.push_back(Tensor::full({1, 28, 28}, 0.1 * (i + 1), kFloat32));
  // Short labels fit under a 56-pixel tile: cell = 56 + 4 wide, 56 + (12 + 2) + 4 tall.
  std::string path = d.file("grid.png");
  save_image_grid(imgs, 3, path, {"a", "b", "c", "d", "e"}, 2);
  Decoded g = decode_rgb(path);
  CHECK(g.w == 3 * 60 + 4);
  CHECK(g.h == 2 * 74 + 4);
  // Tile 4 (row 1, column 1) starts at (4 + 60, 4 + 74) and has grey level 0.5 -> byte 128.
  const uint8_t* p = g.at(4 + 74 + 10, 4 + 60 + 10);
  CHECK(int{p[0]} == 128);
  CHECK(int{p[1]} == 128);
  // The label strip under tile 0 has dark text pixels; the border is white.
  int dark = 0;
  for (int y = 4 + 56; y < 4 + 56 + 14; ++y)
    for (int x = 4; x < 4 + 56; ++x) dark += g.at(y, x)[0] < 100;
  CHECK(dark > 5);
  CHECK(int{g.at(0, 0)[0]} == 255);
  // The labels as CSV beside the picture: index, row, column, label, marked.
  std::ifstream txt(d.file("grid.csv"));
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(txt, line)) lines.push_back(line);
  REQUIRE(lines.size() == 6);
  CHECK(lines[0] == "index,row,col,label,marked");
  CHECK(lines[5] == "4,1,1,\"e\",0");

  // Without labels: no label strip and no CSV.
  save_image_grid(imgs, 5, d.file("plain.png"));
  Decoded q = decode_rgb(d.file("plain.png"));
  CHECK(q.w == 5 * 32 + 4);
  CHECK(q.h == 1 * 32 + 4);
  CHECK_FALSE(fs::exists(d.file("plain.csv")));

  // Long and multi-line labels widen and heighten the cells; RGB and grey images mix; a batch
  // tensor works as well.
  Tensor batch = Tensor::rand({4, 3, 8, 8}, kFloat32, nullptr);
  save_image_grid(batch, 2, d.file("batch.png"),
                  {"pred: Ankle boot\ntrue: Sneaker", "x", "y", "z"});
  Decoded bt = decode_rgb(d.file("batch.png"));
  CHECK(bt.w > 2 * (8 + 4) + 4 + 2 * 60);  // "pred: Ankle boot" is ~80 pixels wide
  // Each row as tall as its own labels: two lines in row 0, one in row 1.
  CHECK(bt.h == (8 + 2 * 12 + 2 + 4) + (8 + 12 + 2 + 4) + 4);
  std::vector<Tensor> mixed = {Tensor::zeros({6, 6}), Tensor::ones({3, 4, 4}),
                               Tensor::full({4, 5, 5}, 0.5)};
  save_image_grid(mixed, 2, d.file("mixed.png"), {"grey", "rgb", "rgba\x01\xff"});
  Decoded m = decode_rgb(d.file("mixed.png"));
  CHECK(m.w > 0);
  std::ifstream mt(d.file("mixed.csv"));
  std::getline(mt, line);
  std::getline(mt, line);
  CHECK(line == "0,0,0,\"grey\",0");
}

TEST_CASE("image: grid rejects bad arguments") {
  TempDir d("image");
  std::vector<Tensor> imgs = {Tensor::zeros({1, 4, 4}), Tensor::zeros({1, 4, 4})};
  CHECK_THROWS_WITH_AS(save_image_grid(imgs, 2, d.file("g.png"), {"only one"}),
                       doctest::Contains("2 images"), Error);
  CHECK_THROWS_WITH_AS(save_image_grid(imgs, 0, d.file("g.png")), doctest::Contains("ncols"),
                       Error);
  CHECK_THROWS_WITH_AS(save_image_grid(std::vector<Tensor>{}, 2, d.file("g.png")),
                       doctest::Contains("no images"), Error);
  CHECK_THROWS_WITH_AS(save_image_grid(imgs, 2, d.file("g.png"), {}, 0), doctest::Contains("scale"),
                       Error);
  std::vector<Tensor> bad = {Tensor::zeros({2, 4, 4})};
  CHECK_THROWS_WITH_AS(save_image_grid(bad, 1, d.file("g.png")), doctest::Contains("image 0"),
                       Error);
  CHECK_THROWS_WITH_AS(save_image_grid(Tensor::zeros({4, 4}), 1, d.file("g.png")),
                       doctest::Contains("[N, C, H, W]"), Error);
}

namespace {

// The dark (text) pixels of a decoded grid whose tiles and background are white.
bool dark(const Decoded& g, int y, int x) {
  const uint8_t* p = g.at(y, x);
  return p[0] < 128 && p[1] < 128 && p[2] < 128;
}

}  // namespace

TEST_CASE("image: grid labels wrap inside their own cell, never into a neighbour") {
  TempDir d("image");
  // White tiles on the white background: every dark pixel is label text.
  std::vector<Tensor> imgs(4, Tensor::ones({1, 28, 28}));
  std::string printable;
  for (char ch = 32; ch < 127; ++ch) printable += ch;
  const std::vector<std::string> labels = {
      "the quick brown fox jumps over the lazy dog and keeps running far away from here", "short",
      "Supercalifragilisticexpialidocious-and-then-some-more-letters", printable};
  const std::string path = d.file("long.png");
  save_image_grid(imgs, 4, path, labels, 1);
  Decoded g = decode_rgb(path);
  // Cells are at most the wrap width (144 font pixels, here scale 1 and font size 1) + margins
  // (2 x 3) + 4 wide: long lines wrap instead of widening the cells without bound.
  CHECK(g.w <= 4 * (144 + 6 + 4) + 4);
  const int cell_w = (g.w - 4) / 4;
  int rows_with_text[4] = {0, 0, 0, 0};
  for (int y = 0; y < g.h; ++y) {
    bool row_has[4] = {false, false, false, false};
    for (int x = 0; x < g.w; ++x) {
      if (!dark(g, y, x)) continue;
      // Inside a cell's text column [x0 + 3, x0 + cell_w - 4 - 3), never in the border, the
      // margins or the gutters.
      const int c = (x - 4) / cell_w, in_cell = (x - 4) % cell_w;
      INFO("dark pixel at x = ", x, ", y = ", y, ", cell width ", cell_w);
      REQUIRE(x >= 4);
      REQUIRE(c < 4);
      CHECK(in_cell >= 3);
      CHECK(in_cell < cell_w - 4 - 3);
      row_has[c] = true;
    }
    for (int c = 0; c < 4; ++c) rows_with_text[c] += row_has[c];
  }
  // The long sentence, the long word and the 95 printable characters take several lines each
  // (a line of text is at most 12 pixels tall): they are wrapped, not cut.
  CHECK(rows_with_text[0] > 3 * 7);
  CHECK(rows_with_text[2] > 2 * 7);
  CHECK(rows_with_text[3] > 3 * 7);
  CHECK(rows_with_text[1] <= 12);
}

TEST_CASE("image: wrap_label fills lines word by word and breaks only over-long words") {
  // Every line fits; the words come back in order; '\n' always breaks.
  const std::string text = "pred: Ankle boot true: Sneaker with a rather long tail of words";
  const int widest_word = label_text_width("Sneaker");
  for (int width : {widest_word, widest_word + 7, 100, 400}) {
    INFO("width ", width);
    std::vector<std::string> lines = wrap_label(text, width);
    std::string joined;
    for (const std::string& l : lines) {
      CHECK(label_text_width(l) <= width);
      CHECK(!l.empty());
      joined += (joined.empty() ? "" : " ") + l;
    }
    CHECK(joined == text);
    // Greedy: the first word of each next line would not have fitted on the line before.
    for (size_t k = 0; k + 1 < lines.size(); ++k)
      CHECK(label_text_width(lines[k] + " " + lines[k + 1].substr(0, lines[k + 1].find(' '))) >
            width);
  }
  CHECK(wrap_label(text, 10000).size() == 1);
  CHECK(wrap_label("a\nb c", 10000) == std::vector<std::string>{"a", "b c"});
  CHECK(wrap_label("", 50) == std::vector<std::string>{""});
  // A word wider than the column is broken between characters, nothing lost.
  std::vector<std::string> w = wrap_label("abcdefghijklmnopqrstuvwxyz", 40);
  CHECK(w.size() > 1);
  std::string all;
  for (const std::string& l : w) {
    CHECK(label_text_width(l) <= 40);
    all += l;
  }
  CHECK(all == "abcdefghijklmnopqrstuvwxyz");
  // A column narrower than one character still makes progress: one character per line.
  CHECK(wrap_label("WWW", 1) == std::vector<std::string>{"W", "W", "W"});
  // Too many lines: cut, the last one ending "..".
  std::vector<std::string> cut = wrap_label("a b c d e f", 6, 3);
  REQUIRE(cut.size() == 3);
  CHECK(cut[2].size() >= 2);
  CHECK(cut[2].substr(cut[2].size() - 2) == "..");
  // Non-printable bytes are measured and drawn as '?'.
  CHECK(wrap_label("a\x01", 1000) == std::vector<std::string>{"a?"});
  CHECK(label_text_width("ab") > label_text_width("a"));
}

TEST_CASE("image: marked grid cells get a red frame, red labels, a legend and a CSV column") {
  TempDir d("image");
  std::vector<Tensor> imgs(3, Tensor::ones({1, 10, 10}));
  GridOptions o;
  o.labels = {"ok", "wrong, \"quoted\"", "ok too"};
  o.marked = {false, true, false};
  o.scale = 2;
  o.title = "Predictions";
  o.mark_legend = "red: wrong";
  const std::string path = d.file("marked.png");
  save_image_grid(imgs, 3, path, o);
  Decoded g = decode_rgb(path);
  auto red = [&](int y, int x) {
    const uint8_t* p = g.at(y, x);
    return p[0] > 150 && p[1] < 80 && p[2] < 80;
  };
  // Count red pixels per column third of the grid (below the header) and in the header.
  const int cell_w = (g.w - 4) / 3;
  int red_in_cell[3] = {0, 0, 0}, red_header = 0, dark_header = 0;
  for (int y = 0; y < g.h; ++y)
    for (int x = 4; x < 4 + 3 * cell_w; ++x) {
      const bool header = y < 4 + 2 * 12 + 2;  // title + legend lines (font size 1)
      if (header) {
        red_header += red(y, x);
        dark_header += dark(g, y, x);
      } else if (red(y, x)) {
        ++red_in_cell[(x - 4) / cell_w];
      }
    }
  CHECK(red_in_cell[0] == 0);
  CHECK(red_in_cell[2] == 0);
  // The frame alone: 3 pixels around a 20-pixel tile = (26^2 - 20^2) pixels, plus the label.
  CHECK(red_in_cell[1] > 26 * 26 - 20 * 20);
  CHECK(red_header > 10);   // the legend's swatch and text
  CHECK(dark_header > 10);  // the title
  std::ifstream csv(d.file("marked.csv"));
  std::vector<std::string> rows;
  for (std::string line; std::getline(csv, line);) rows.push_back(line);
  REQUIRE(rows.size() == 4);
  CHECK(rows[1] == "0,0,0,\"ok\",0");
  CHECK(rows[2] == "1,0,1,\"wrong, \"\"quoted\"\"\",1");
  // Marks without labels: still a CSV (the labels empty).
  GridOptions only_marks;
  only_marks.marked = {true, false, false};
  save_image_grid(imgs, 3, d.file("marks_only.png"), only_marks);
  std::ifstream mo(d.file("marks_only.csv"));
  std::string first, second;
  std::getline(mo, first);
  std::getline(mo, second);
  CHECK(second == "0,0,0,\"\",1");

  GridOptions bad;
  bad.marked = {true};
  CHECK_THROWS_WITH_AS(save_image_grid(imgs, 3, d.file("bad.png"), bad),
                       doctest::Contains("1 marks for 3 images"), Error);
  GridOptions bad_bar;
  bad_bar.colorbar = ColorBar{1.0, 1.0, "x"};
  CHECK_THROWS_WITH_AS(save_image_grid(imgs, 3, d.file("bad.png"), bad_bar),
                       doctest::Contains("lo < hi"), Error);
}

TEST_CASE("image: a colour bar runs from viridis(0) at lo to viridis(1) at hi") {
  TempDir d("image");
  GridOptions o;
  o.colorbar = ColorBar{0.0, 0.25, ""};
  const std::string path = d.file("bar.png");
  save_image_grid({Tensor::ones({1, 8, 8})}, 1, path, o);
  Decoded g = decode_rgb(path);
  // The bar is the row just under the top border: find its leftmost and rightmost coloured
  // (non-grey) pixels and compare with the ends of the colour scale.
  const int y = 4 + 2;
  int first = -1, last = -1;
  for (int x = 0; x < g.w; ++x) {
    const uint8_t* p = g.at(y, x);
    if (p[0] != p[1] || p[1] != p[2]) {
      if (first < 0) first = x;
      last = x;
    }
  }
  REQUIRE(first >= 0);
  CHECK(last - first + 1 == 100);
  const std::array<float, 3> lo = viridis(0), hi = viridis(1);
  for (int ch = 0; ch < 3; ++ch) {
    CHECK(std::abs(g.at(y, first)[ch] - lo[ch] * 255) <= 1);
    CHECK(std::abs(g.at(y, last)[ch] - hi[ch] * 255) <= 1);
  }
}

TEST_CASE("image: overlay_heatmap blends the upsampled map's colours over the grey image") {
  // viridis: the scale's ends and midpoint, NaN and clamping.
  std::array<float, 3> v0 = viridis(0), v1 = viridis(1);
  CHECK(v0[0] == doctest::Approx(0x44 / 255.0));
  CHECK(v0[2] == doctest::Approx(0x54 / 255.0));
  CHECK(v1[0] == doctest::Approx(0xfd / 255.0));
  CHECK(viridis(-3) == v0);
  CHECK(viridis(7) == v1);
  CHECK(viridis(std::nan("")) == v0);

  // A 2 x 2 map over a 4 x 4 image: the top-left 2 x 2 block of the upsampled map (bilinear,
  // align_corners=False) is 0 at its outer corner, so that pixel shows viridis(0).
  Tensor image = Tensor::full({1, 4, 4}, 0.5, kFloat32);
  Tensor heat = Tensor::from_vector(std::vector<float>{0.0f, 1.0f, 1.0f, 1.0f}).reshape({2, 2});
  Tensor o = overlay_heatmap(image, heat, 0.0, 1.0, 0.6);
  CHECK(o.shape() == Shape{3, 4, 4});
  std::vector<float> ov = o.to_vector<float>();
  for (int ch = 0; ch < 3; ++ch) {
    CHECK(ov[ch * 16 + 0] == doctest::Approx(0.4 * 0.5 + 0.6 * v0[ch]).epsilon(1e-5));
    CHECK(ov[ch * 16 + 15] == doctest::Approx(0.4 * 0.5 + 0.6 * v1[ch]).epsilon(1e-5));
  }
  // alpha = 0 gives the grey picture back, an RGB picture turned grey by luminance.
  Tensor rgb = Tensor::zeros({3, 4, 4});
  rgb.narrow(0, 1, 1).fill_(1.0);
  std::vector<float> g = overlay_heatmap(rgb, heat, 0.0, 1.0, 0.0).to_vector<float>();
  for (float x : g) CHECK(x == doctest::Approx(0.587));
  // The heat map scale: lo..hi maps onto the colour scale, outside values clamp.
  std::vector<float> c =
      overlay_heatmap(image, Tensor::full({1, 1}, 5.0), 0.0, 1.0, 1.0).to_vector<float>();
  CHECK(c[0] == doctest::Approx(v1[0]));

  CHECK_THROWS_WITH_AS(overlay_heatmap(image, heat, 1.0, 1.0), doctest::Contains("lo < hi"), Error);
  CHECK_THROWS_WITH_AS(overlay_heatmap(image, heat, 0.0, 1.0, 1.5), doctest::Contains("alpha"),
                       Error);
  CHECK_THROWS_WITH_AS(overlay_heatmap(Tensor::zeros({2, 4, 4}), heat, 0.0, 1.0),
                       doctest::Contains("C = 1 or 3"), Error);
  CHECK_THROWS_WITH_AS(overlay_heatmap(image, Tensor::zeros({2, 2, 2}), 0.0, 1.0),
                       doctest::Contains("heat map"), Error);
}

TEST_CASE("image: every glyph of a long label is drawn (none dropped at the end)") {
  // stb_easy_font stops writing quads when its buffer is full; a buffer sized for simple glyphs
  // dropped the last characters of labels made of many-segment glyphs such as "0.000366".
  TempDir d("image");
  auto ink = [&](const std::string& label) {
    const std::string path = d.file("ink.png");
    save_image_grid({Tensor::ones({1, 4, 4})}, 1, path, {label}, 1);
    Decoded g = decode_rgb(path);
    int n = 0;
    for (int y = 0; y < g.h; ++y)
      for (int x = 0; x < g.w; ++x) n += dark(g, y, x);
    return n;
  };
  const int one = ink("8");
  CHECK(one > 10);
  CHECK(ink("88888888888888888888") == 20 * one);
  CHECK(ink("@@@@@@@@@@@@@@@@@@@@") == 20 * ink("@"));
}
