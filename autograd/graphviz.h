// Drawing the autograd graph for a learner, as Graphviz DOT (and SVG when Graphviz is installed).
//
//   Tensor loss = model.forward(x).sum();
//   write_svg(loss, "out/graph.svg");   // false (and only graph.dot written) without `dot`
//
// Every recorded op is a box with its name and its output's shape and dtype; every leaf that
// requires a gradient is an ellipse with its shape and dtype, marked "parameter" when it has a
// name (modules name theirs, e.g. "fc1.weight") and "leaf" otherwise; the tensor drawn from is
// the "output" at the bottom. Arrows run from each input to the op that consumed it, i.e. in
// the direction of the forward pass; backward() walks them in reverse. Inputs that do not
// require gradients (data, constants) are not part of the graph and are not drawn.
#pragma once

#include <string>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad {

// The graph that produced `root`, as DOT text.
std::string to_dot(const Tensor& root);

// Writes to_dot(root) to `path`; throws mmgrad::Error when the file cannot be written.
void write_dot(const Tensor& root, const std::string& path);

// Writes the DOT next to `path` (path with its extension replaced by .dot) and runs Graphviz
// (`dot -Tsvg -o path file.dot`, found on PATH; no shell involved). Returns false, leaving the
// .dot file, when `dot` is not installed or fails.
bool write_svg(const Tensor& root, const std::string& path);

}  // namespace mmgrad
