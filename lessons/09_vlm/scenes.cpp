#include "09_vlm/scenes.h"

#include <algorithm>
#include <cmath>

#include "mmgrad/core/error.h"
#include "mmgrad/core/philox.h"
#include "mmgrad/data/tokenizer.h"

namespace mmgrad::lesson::scenes {
namespace {

// RGB of each colour name, before the per-scene jitter.
constexpr float kPalette[5][3] = {
    {0.90f, 0.15f, 0.15f},  // red
    {0.15f, 0.75f, 0.20f},  // green
    {0.20f, 0.35f, 0.95f},  // blue
    {0.95f, 0.85f, 0.15f},  // yellow
    {0.65f, 0.25f, 0.85f},  // purple
};
constexpr float kBackground = 0.08f;

// Counters of scene `index`: [base, base + 32) for the layout, [base + 32, base + 64) for the
// colour jitter, [base + 64, ...) for the pixel noise (3 * 128 * 128 / 2 < 2^20 - 64).
constexpr int kIndexBits = 20;

uint64_t scene_base(uint64_t index) {
  MMGRAD_CHECK(index < (uint64_t{1} << (64 - kIndexBits)), "scenes: scene index ", index,
               " is too large");
  return index << kIndexBits;
}

// Uniform draws from consecutive Philox counters.
struct Draws {
  uint64_t seed, counter;
  double uniform() { return philox::uniform(counter++, seed); }
  double range(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int below(int n) { return std::min(n - 1, static_cast<int>(uniform() * n)); }
};

void check_options(const char* op, const SceneOptions& o) {
  MMGRAD_CHECK(o.image_size >= 16 && o.image_size <= 128, op,
               ": image_size must be in [16, 128], got ", o.image_size);
  MMGRAD_CHECK(o.two_object_prob >= 0.0 && o.two_object_prob <= 1.0, op,
               ": two_object_prob must be in [0, 1], got ", o.two_object_prob);
  MMGRAD_CHECK(o.noise_std >= 0.0 && o.color_jitter >= 0.0, op,
               ": noise_std and color_jitter must be >= 0, got ", o.noise_std, " and ",
               o.color_jitter);
}

void check_scene(const char* op, const Scene& s) {
  const size_t n = s.objects.size();
  MMGRAD_CHECK(n == 1 || n == 2, op, ": a scene holds 1 or 2 objects, got ", n);
  for (const Object& o : s.objects)
    MMGRAD_CHECK(
        o.color >= 0 && o.color < 5 && o.shape >= 0 && o.shape < 3 && o.size >= 0 && o.size < 2, op,
        ": object attributes out of range (colour ", o.color, ", shape ", o.shape, ", size ",
        o.size, ")");
  if (n == 1)
    MMGRAD_CHECK(s.quadrant >= 0 && s.quadrant < 4, op,
                 ": a one-object scene needs a quadrant "
                 "in [0, 4), got ",
                 s.quadrant);
  else
    MMGRAD_CHECK(s.relation >= 0 && s.relation < 4, op,
                 ": a two-object scene needs a relation "
                 "in [0, 4), got ",
                 s.relation);
}

// Places an object of the given size in quadrant q (row = q / 2, column = q % 2), jittered as far
// as it can move without leaving the quadrant.
Object place(Draws& d, int color, int shape, int size, int q, double S) {
  const double scale = S / 32.0;
  Object o;
  o.color = color;
  o.shape = shape;
  o.size = size;
  o.radius = (size == 0 ? d.range(3.2, 4.0) : d.range(6.0, 7.0)) * scale;
  const double half = S / 4.0;  // half the quadrant's side
  const double room = std::max(0.0, half - o.radius - 0.5 * scale);
  o.cx = (2 * (q % 2) + 1) * half + d.range(-room, room);
  o.cy = (2 * (q / 2) + 1) * half + d.range(-room, room);
  return o;
}

// Whether the pixel centre (px, py) lies inside the object.
bool inside(const Object& o, double px, double py) {
  const double dx = px - o.cx, dy = py - o.cy, r = o.radius;
  switch (o.shape) {
    case 0:  // circle
      return dx * dx + dy * dy <= r * r;
    case 1:  // square of side 1.6 r (about the circle's area: 2.56 r^2 vs 3.14 r^2)
      return std::abs(dx) <= 0.8 * r && std::abs(dy) <= 0.8 * r;
    default: {  // triangle pointing up: apex at cy - r, base at cy + 0.8 r, base width 2 r
      const double t = (dy + r) / (1.8 * r);
      return t >= 0.0 && t <= 1.0 && std::abs(dx) <= t * r;
    }
  }
}

int find(const std::vector<std::string>& names, const std::string& w) {
  auto it = std::find(names.begin(), names.end(), w);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

}  // namespace

const std::vector<std::string>& color_names() {
  static const std::vector<std::string> v = {"red", "green", "blue", "yellow", "purple"};
  return v;
}
const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> v = {"circle", "square", "triangle"};
  return v;
}
const std::vector<std::string>& size_names() {
  static const std::vector<std::string> v = {"small", "large"};
  return v;
}
const std::vector<std::string>& quadrant_names() {
  static const std::vector<std::string> v = {"top left", "top right", "bottom left",
                                             "bottom right"};
  return v;
}
const std::vector<std::string>& relation_names() {
  static const std::vector<std::string> v = {"above", "below", "left of", "right of"};
  return v;
}

Scene make_scene(uint64_t seed, uint64_t index, const SceneOptions& opts) {
  check_options("make_scene", opts);
  Draws d{seed, scene_base(index)};
  const double S = static_cast<double>(opts.image_size);
  Scene s;
  if (d.uniform() >= opts.two_object_prob) {
    const int color = d.below(5), shape = d.below(3), size = d.below(2);
    s.quadrant = d.below(4);
    s.objects.push_back(place(d, color, shape, size, s.quadrant, S));
    return s;
  }
  // Two different shapes, named in shape order: (circle, square), (circle, triangle) or
  // (square, triangle).
  static constexpr int kPairs[3][2] = {{0, 1}, {0, 2}, {1, 2}};
  const int pair = d.below(3);
  // Two neighbouring quadrants: stacked (one column) or side by side (one row).
  const bool vertical = d.below(2) == 0;
  const int line = d.below(2);               // which column / row
  const bool first_leads = d.below(2) == 0;  // objects[0] on top / on the left
  int q0, q1;
  if (vertical) {
    q0 = first_leads ? line : 2 + line;
    q1 = first_leads ? 2 + line : line;
    s.relation = first_leads ? 0 : 1;  // above / below
  } else {
    q0 = 2 * line + (first_leads ? 0 : 1);
    q1 = 2 * line + (first_leads ? 1 : 0);
    s.relation = first_leads ? 2 : 3;  // left of / right of
  }
  const int qs[2] = {q0, q1};
  for (int k = 0; k < 2; ++k) {
    const int color = d.below(5), size = d.below(2);
    s.objects.push_back(place(d, color, kPairs[pair][k], size, qs[k], S));
  }
  return s;
}

void render_scene(const Scene& scene, uint64_t seed, uint64_t index, const SceneOptions& opts,
                  float* out) {
  check_options("render_scene", opts);
  check_scene("render_scene", scene);
  MMGRAD_CHECK(out != nullptr, "render_scene: output buffer is null");
  const int64_t S = opts.image_size, plane = S * S;
  const uint64_t base = scene_base(index);
  // The objects' jittered colours.
  float rgb[2][3];
  Draws jitter{seed, base + 32};
  for (size_t k = 0; k < scene.objects.size(); ++k)
    for (int c = 0; c < 3; ++c) {
      const double v =
          kPalette[scene.objects[k].color][c] + jitter.range(-opts.color_jitter, opts.color_jitter);
      rgb[k][c] = static_cast<float>(std::clamp(v, 0.0, 1.0));
    }
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x) {
      const float* colour = nullptr;
      for (size_t k = 0; k < scene.objects.size(); ++k)
        if (inside(scene.objects[k], x + 0.5, y + 0.5)) colour = rgb[k];
      for (int c = 0; c < 3; ++c) out[c * plane + y * S + x] = colour ? colour[c] : kBackground;
    }
  if (opts.noise_std > 0) {
    // Gaussian pixel noise, two values per Philox draw (Box-Muller gives a cos and a sin pair).
    const int64_t n = 3 * plane;
    for (int64_t i = 0; i < n; i += 2) {
      const philox::U32x4 r = philox::philox4x32(base + 64 + static_cast<uint64_t>(i / 2), seed);
      const double radius = std::sqrt(-2.0 * std::log(1.0 - philox::to_unit(r.v[0], r.v[1])));
      const double angle = 6.283185307179586 * philox::to_unit(r.v[2], r.v[3]);
      out[i] = static_cast<float>(
          std::clamp(out[i] + opts.noise_std * radius * std::cos(angle), 0.0, 1.0));
      if (i + 1 < n)
        out[i + 1] = static_cast<float>(
            std::clamp(out[i + 1] + opts.noise_std * radius * std::sin(angle), 0.0, 1.0));
    }
  }
}

Tensor render_scene(const Scene& scene, uint64_t seed, uint64_t index, const SceneOptions& opts) {
  check_options("render_scene", opts);
  Tensor t = Tensor::empty({3, opts.image_size, opts.image_size});
  render_scene(scene, seed, index, opts, t.data_ptr<float>());
  return t;
}

std::string caption(const Scene& s) {
  check_scene("caption", s);
  auto phrase = [](const Object& o) {
    return "a " + size_names()[o.size] + " " + color_names()[o.color] + " " +
           shape_names()[o.shape];
  };
  if (s.objects.size() == 1)
    return phrase(s.objects[0]) + " in the " + quadrant_names()[s.quadrant];
  return phrase(s.objects[0]) + " " + relation_names()[s.relation] + " " + phrase(s.objects[1]);
}

std::string color_question(const Scene& s, int object) {
  check_scene("color_question", s);
  MMGRAD_CHECK(object >= 0 && object < static_cast<int>(s.objects.size()),
               "color_question: object ", object, " is not in a scene of ", s.objects.size(),
               " object(s)");
  return "what colour is the " + shape_names()[s.objects[object].shape];
}

std::string color_answer(const Scene& s, int object) {
  check_scene("color_answer", s);
  MMGRAD_CHECK(object >= 0 && object < static_cast<int>(s.objects.size()), "color_answer: object ",
               object, " is not in a scene of ", s.objects.size(), " object(s)");
  return color_names()[s.objects[object].color];
}

ParsedCaption parse_caption(const std::string& text) {
  const std::vector<std::string> w = data::Tokenizer::split(text);
  ParsedCaption p;
  auto current = [&]() -> ParsedObject& {
    if (p.objects.empty()) p.objects.emplace_back();
    return p.objects.back();
  };
  for (size_t i = 0; i < w.size(); ++i) {
    const std::string next = i + 1 < w.size() ? w[i + 1] : "";
    int id;
    if (w[i] == "a") {
      p.objects.emplace_back();
    } else if ((id = find(color_names(), w[i])) >= 0) {
      current().color = id;
    } else if ((id = find(shape_names(), w[i])) >= 0) {
      current().shape = id;
    } else if ((id = find(size_names(), w[i])) >= 0) {
      current().size = id;
    } else if ((w[i] == "top" || w[i] == "bottom") && (next == "left" || next == "right")) {
      p.quadrant = find(quadrant_names(), w[i] + " " + next);
      ++i;
    } else if (w[i] == "above" || w[i] == "below") {
      p.relation = find(relation_names(), w[i]);
    } else if ((w[i] == "left" || w[i] == "right") && next == "of") {
      p.relation = find(relation_names(), w[i] + " of");
      ++i;
    }
  }
  return p;
}

AttributeScore& AttributeScore::operator+=(const AttributeScore& o) {
  color_ok += o.color_ok;
  shape_ok += o.shape_ok;
  size_ok += o.size_ok;
  position_ok += o.position_ok;
  objects += o.objects;
  scenes += o.scenes;
  return *this;
}

AttributeScore score_caption(const Scene& truth, const ParsedCaption& parsed) {
  check_scene("score_caption", truth);
  AttributeScore s;
  s.scenes = 1;
  for (size_t i = 0; i < truth.objects.size(); ++i) {
    ++s.objects;
    if (i >= parsed.objects.size()) continue;
    const Object& t = truth.objects[i];
    const ParsedObject& p = parsed.objects[i];
    s.color_ok += p.color == t.color;
    s.shape_ok += p.shape == t.shape;
    s.size_ok += p.size == t.size;
  }
  if (truth.objects.size() == 1)
    s.position_ok = parsed.quadrant == truth.quadrant && parsed.relation < 0;
  else
    s.position_ok = parsed.relation == truth.relation && parsed.quadrant < 0;
  return s;
}

}  // namespace mmgrad::lesson::scenes
