// Generated scenes for vision-language lessons: one or two coloured shapes on a small RGB canvas,
// with a caption that names every attribute the image shows and colour questions about them.
//
//   one object:   "a small red circle in the top left"
//   two objects:  "a large blue square above a small yellow triangle"
//
// What a caption needs from the image (so a model cannot guess it from the text alone):
//   colour   red, green, blue, yellow, purple      (each object's fill; jittered per scene)
//   shape    circle, square, triangle              (two objects always have different shapes)
//   size     small (radius 3.2-4 px) or large (6-7 px) (on a 32x32 canvas)
//   position one object: the quadrant it sits in (top left, top right, bottom left,
//            bottom right); two objects: where the first stands relative to the second
//            (above, below, left of, right of: they occupy two neighbouring quadrants).
// The caption is a function of the image: two objects are always named in shape order (circle
// before square before triangle), so "a red square below a blue circle" is never the reference,
// "a blue circle above a red square" is. Without such a rule the same picture would have two
// correct captions and exact match would punish the model for a coin flip.
//
// Every scene is a pure function of (seed, index): scene i of a set is drawn from Philox counters
// reserved for it, so a training stream can be generated batch by batch, and a held-out set is
// simply another seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::lesson::scenes {

// Attribute vocabularies (index = the attribute's id).
const std::vector<std::string>& color_names();     // red green blue yellow purple
const std::vector<std::string>& shape_names();     // circle square triangle
const std::vector<std::string>& size_names();      // small large
const std::vector<std::string>& quadrant_names();  // "top left" "top right" "bottom left" ...
const std::vector<std::string>& relation_names();  // above below "left of" "right of"

struct Object {
  int color = 0, shape = 0, size = 0;
  double cx = 0, cy = 0, radius = 0;  // in pixels; y grows downwards
};

struct Scene {
  std::vector<Object> objects;  // 1 or 2, in caption order
  int quadrant = -1;            // one object: its quadrant (index into quadrant_names())
  int relation = -1;            // two objects: objects[0] relative to objects[1] (relation_names())
};

struct SceneOptions {
  int64_t image_size = 32;       // square canvas, 16..128 pixels
  double two_object_prob = 0.5;  // chance that a scene holds two objects
  double noise_std = 0.05;       // Gaussian pixel noise
  double color_jitter = 0.08;    // each object's RGB is moved by up to this much per channel
};

// Scene `index` of the set named by `seed`.
Scene make_scene(uint64_t seed, uint64_t index, const SceneOptions& opts = {});

// Draws a scene (its pixel noise is also a function of (seed, index)) into `out`, which holds
// 3 * S * S floats (CHW, values in [0, 1]).
void render_scene(const Scene& scene, uint64_t seed, uint64_t index, const SceneOptions& opts,
                  float* out);
// The same as a float32 [3, S, S] tensor.
Tensor render_scene(const Scene& scene, uint64_t seed, uint64_t index,
                    const SceneOptions& opts = {});

// "a small red circle in the top left", "a large blue square above a small yellow triangle".
std::string caption(const Scene& scene);
// "what colour is the circle" about objects[object]; the answer is its colour name. No trailing
// "?": the question ends on the word naming the object, so a model predicts the answer at the
// very position where it reads which object is asked about (see lesson 09, section 7).
std::string color_question(const Scene& scene, int object);
std::string color_answer(const Scene& scene, int object);

// A caption read back into attributes (for per-attribute accuracy of generated text). Lenient:
// every "a" starts an object, attribute words fill the current object, "in the <quadrant>" and
// the relation words set the layout; anything else is ignored. -1 marks what was not found.
struct ParsedObject {
  int color = -1, shape = -1, size = -1;
};
struct ParsedCaption {
  std::vector<ParsedObject> objects;
  int quadrant = -1;
  int relation = -1;
};
ParsedCaption parse_caption(const std::string& text);

// Per-attribute agreement of a parsed caption with the true scene, as counts: each reference
// object contributes one colour, one shape and one size check (object i against parsed object i,
// a missing object counts as wrong); the layout (quadrant or relation) is one position check.
struct AttributeScore {
  int64_t color_ok = 0, shape_ok = 0, size_ok = 0, position_ok = 0;
  int64_t objects = 0, scenes = 0;
  AttributeScore& operator+=(const AttributeScore& o);
};
AttributeScore score_caption(const Scene& truth, const ParsedCaption& parsed);

}  // namespace mmgrad::lesson::scenes
