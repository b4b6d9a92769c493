// The generated scenes of lesson 09 (lessons/09_vlm/scenes.h): reproducibility, captions that
// follow from the pixels, the caption parser and the per-attribute score, bad inputs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "09_vlm/scenes.h"
#include "mmgrad/core/error.h"

namespace sc = mmgrad::lesson::scenes;

namespace {

// The mean colour of the pixels within 1 px of an object's centre, from a noise-free render.
std::vector<float> centre_colour(const std::vector<float>& img, int64_t S, const sc::Object& o) {
  std::vector<float> c(3, 0.0f);
  int n = 0;
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x)
      if (std::abs(x + 0.5 - o.cx) <= 1.0 && std::abs(y + 0.5 - o.cy) <= 1.0) {
        for (int k = 0; k < 3; ++k) c[k] += img[k * S * S + y * S + x];
        ++n;
      }
  for (float& v : c) v /= static_cast<float>(n);
  return c;
}

}  // namespace

TEST_CASE("scenes: a scene is a pure function of (seed, index)") {
  const sc::SceneOptions o;
  for (uint64_t i = 0; i < 20; ++i) {
    CHECK(sc::caption(sc::make_scene(7, i)) == sc::caption(sc::make_scene(7, i)));
    mmgrad::Tensor a = sc::render_scene(sc::make_scene(7, i), 7, i, o);
    mmgrad::Tensor b = sc::render_scene(sc::make_scene(7, i), 7, i, o);
    CHECK(a.to_vector<float>() == b.to_vector<float>());
    CHECK(a.size(0) == 3);
    CHECK(a.size(1) == 32);
  }
  // Another seed gives other scenes.
  int same = 0;
  for (uint64_t i = 0; i < 50; ++i)
    same += sc::caption(sc::make_scene(7, i)) == sc::caption(sc::make_scene(8, i));
  CHECK(same < 10);
}

TEST_CASE("scenes: the attributes are spread and the caption matches the drawn pixels") {
  sc::SceneOptions o;
  o.noise_std = 0.0;
  o.color_jitter = 0.0;
  std::set<std::string> captions;
  int two = 0, counts_color[5] = {}, counts_shape[3] = {}, counts_size[2] = {};
  const int n = 400;
  for (uint64_t i = 0; i < n; ++i) {
    const sc::Scene s = sc::make_scene(11, i, o);
    captions.insert(sc::caption(s));
    two += s.objects.size() == 2;
    std::vector<float> img(3 * 32 * 32);
    sc::render_scene(s, 11, i, o, img.data());
    CHECK(*std::min_element(img.begin(), img.end()) >= 0.0f);
    CHECK(*std::max_element(img.begin(), img.end()) <= 1.0f);
    for (size_t k = 0; k < s.objects.size(); ++k) {
      const sc::Object& ob = s.objects[k];
      ++counts_color[ob.color];
      ++counts_shape[ob.shape];
      ++counts_size[ob.size];
      // The object lies inside the canvas and its centre pixel has a non-background colour.
      CHECK(ob.cx - ob.radius >= 0);
      CHECK(ob.cx + ob.radius <= 32);
      CHECK(ob.cy - ob.radius >= 0);
      CHECK(ob.cy + ob.radius <= 32);
      const std::vector<float> c = centre_colour(img, 32, ob);
      CHECK(std::max({c[0], c[1], c[2]}) > 0.5f);
    }
    if (s.objects.size() == 2) {
      // Named in shape order, and the relation agrees with the centres.
      CHECK(s.objects[0].shape < s.objects[1].shape);
      const double dx = s.objects[0].cx - s.objects[1].cx, dy = s.objects[0].cy - s.objects[1].cy;
      const bool agrees[4] = {dy<0, dy> 0, dx<0, dx> 0};  // above, below, left, right
      CHECK(agrees[s.relation]);
    } else {
      const sc::Object& ob = s.objects[0];
      CHECK((ob.cx > 16) == (s.quadrant % 2 == 1));
      CHECK((ob.cy > 16) == (s.quadrant / 2 == 1));
    }
  }
  CHECK(two > n * 0.4);
  CHECK(two < n * 0.6);
  for (int c : counts_color) CHECK(c > 60);
  for (int c : counts_shape) CHECK(c > 100);
  for (int c : counts_size) CHECK(c > 200);
  CHECK(captions.size() > 200);  // mostly distinct captions: no short list to memorise
}

TEST_CASE("scenes: captions, questions and answers") {
  sc::Scene one;
  one.objects.push_back({.color = 0, .shape = 0, .size = 0});
  one.quadrant = 0;
  CHECK(sc::caption(one) == "a small red circle in the top left");
  CHECK(sc::color_question(one, 0) == "what colour is the circle");
  CHECK(sc::color_answer(one, 0) == "red");

  sc::Scene two;
  two.objects.push_back({.color = 2, .shape = 1, .size = 1});
  two.objects.push_back({.color = 3, .shape = 2, .size = 0});
  two.relation = 0;
  CHECK(sc::caption(two) == "a large blue square above a small yellow triangle");
  CHECK(sc::color_question(two, 1) == "what colour is the triangle");
  CHECK(sc::color_answer(two, 1) == "yellow");
  two.relation = 3;
  CHECK(sc::caption(two) == "a large blue square right of a small yellow triangle");
}

TEST_CASE("scenes: the parser reads every generated caption back exactly") {
  for (uint64_t i = 0; i < 200; ++i) {
    const sc::Scene s = sc::make_scene(3, i);
    const sc::AttributeScore a = sc::score_caption(s, sc::parse_caption(sc::caption(s)));
    CHECK(a.scenes == 1);
    CHECK(a.objects == static_cast<int64_t>(s.objects.size()));
    CHECK(a.color_ok == a.objects);
    CHECK(a.shape_ok == a.objects);
    CHECK(a.size_ok == a.objects);
    CHECK(a.position_ok == 1);
  }
}

TEST_CASE("scenes: the score counts each wrong attribute once") {
  sc::Scene two;
  two.objects.push_back({.color = 2, .shape = 1, .size = 1});
  two.objects.push_back({.color = 3, .shape = 2, .size = 0});
  two.relation = 0;
  // Second colour wrong.
  sc::AttributeScore a =
      sc::score_caption(two, sc::parse_caption("a large blue square above a small red triangle"));
  CHECK(a.color_ok == 1);
  CHECK(a.shape_ok == 2);
  CHECK(a.size_ok == 2);
  CHECK(a.position_ok == 1);
  // Wrong relation, first size wrong.
  a = sc::score_caption(two,
                        sc::parse_caption("a small blue square left of a small yellow triangle"));
  CHECK(a.size_ok == 1);
  CHECK(a.position_ok == 0);
  // A quadrant where a relation was due, and a missing second object.
  a = sc::score_caption(two, sc::parse_caption("a large blue square in the top left"));
  CHECK(a.objects == 2);
  CHECK(a.color_ok == 1);
  CHECK(a.shape_ok == 1);
  CHECK(a.position_ok == 0);
  // Garbage parses to nothing and scores nothing.
  a = sc::score_caption(two, sc::parse_caption("<unk> of of the"));
  CHECK(a.color_ok + a.shape_ok + a.size_ok + a.position_ok == 0);
  const sc::ParsedCaption p = sc::parse_caption("a small green triangle in the bottom right");
  REQUIRE(p.objects.size() == 1);
  CHECK(p.objects[0].color == 1);
  CHECK(p.objects[0].shape == 2);
  CHECK(p.objects[0].size == 0);
  CHECK(p.quadrant == 3);
  CHECK(p.relation == -1);
}

TEST_CASE("scenes: bad inputs are clear errors") {
  sc::SceneOptions bad;
  bad.image_size = 8;
  CHECK_THROWS_WITH_AS(sc::make_scene(1, 0, bad), doctest::Contains("make_scene"), mmgrad::Error);
  bad = {};
  bad.two_object_prob = 1.5;
  CHECK_THROWS_WITH_AS(sc::make_scene(1, 0, bad), doctest::Contains("two_object_prob"),
                       mmgrad::Error);
  sc::Scene empty;
  CHECK_THROWS_WITH_AS(sc::caption(empty), doctest::Contains("caption"), mmgrad::Error);
  sc::Scene one;
  one.objects.push_back({.color = 9, .shape = 0, .size = 0});
  one.quadrant = 0;
  CHECK_THROWS_WITH_AS(sc::render_scene(one, 1, 0, {}), doctest::Contains("render_scene"),
                       mmgrad::Error);
  one.objects[0].color = 0;
  CHECK_THROWS_WITH_AS(sc::color_question(one, 1), doctest::Contains("color_question"),
                       mmgrad::Error);
  CHECK_THROWS_AS(sc::render_scene(one, 1, 0, {}, nullptr), mmgrad::Error);
  CHECK_THROWS_WITH_AS(sc::make_scene(1, uint64_t{1} << 50), doctest::Contains("too large"),
                       mmgrad::Error);
}
