#include <algorithm>
#include <cmath>
#include <limits>

#include "mmgrad/core/error.h"
#include "mmgrad/plot/figure.h"
#include "mmgrad/plot/svg.h"

namespace mmgrad::plot {

using namespace detail;

ScatterPlot::ScatterPlot(std::string title, std::string xlabel, std::string ylabel)
    : Chart(std::move(title), std::move(xlabel), std::move(ylabel), 560, 460) {}

ScatterPlot& ScatterPlot::add_points(const std::string& name, const std::vector<double>& xs,
                                     const std::vector<double>& ys, Marker marker,
                                     const std::string& color, bool in_legend) {
  MMGRAD_CHECK(xs.size() == ys.size(), "ScatterPlot::add_points: group '", name, "' has ",
               xs.size(), " x values but ", ys.size(), " y values");
  groups_.push_back(
      Group{name, color.empty() ? palette(next_color_++) : color, marker, xs, ys, in_legend});
  return *this;
}

ScatterPlot& ScatterPlot::add_classes(const std::vector<double>& xs, const std::vector<double>& ys,
                                      const std::vector<int64_t>& labels,
                                      const std::vector<std::string>& class_names, Marker marker,
                                      const std::string& suffix,
                                      const std::vector<std::string>& colors) {
  const char* op = "ScatterPlot::add_classes";
  MMGRAD_CHECK(xs.size() == ys.size() && xs.size() == labels.size(), op, ": got ", xs.size(),
               " x values, ", ys.size(), " y values and ", labels.size(),
               " labels (need one of each per point)");
  MMGRAD_CHECK(!class_names.empty(), op, ": class_names is empty");
  MMGRAD_CHECK(colors.empty() || colors.size() == class_names.size(), op, ": ", colors.size(),
               " colors for ", class_names.size(), " classes");
  const int64_t c = static_cast<int64_t>(class_names.size());
  std::vector<Group> per_class(static_cast<size_t>(c));
  for (size_t i = 0; i < labels.size(); ++i) {
    MMGRAD_CHECK(labels[i] >= 0 && labels[i] < c, op, ": label ", labels[i], " of point ", i,
                 " is outside [0, ", c, ")");
    per_class[labels[i]].xs.push_back(xs[i]);
    per_class[labels[i]].ys.push_back(ys[i]);
  }
  for (int64_t k = 0; k < c; ++k) {
    Group& g = per_class[k];
    if (g.xs.empty()) continue;
    g.name = suffix.empty() ? class_names[k] : class_names[k] + " (" + suffix + ")";
    g.color = colors.empty() ? palette(static_cast<size_t>(k)) : colors[k];
    g.marker = marker;
    groups_.push_back(std::move(g));
  }
  return *this;
}

ScatterPlot& ScatterPlot::add_classes(const Tensor& xy, const Tensor& labels,
                                      const std::vector<std::string>& class_names, Marker marker,
                                      const std::string& suffix,
                                      const std::vector<std::string>& colors) {
  MMGRAD_CHECK(xy.defined() && xy.dim() == 2 && xy.size(1) >= 2 && xy.dtype() != kBool,
               "ScatterPlot::add_classes: expects points [N, 2] (extra columns are ignored), ",
               "got ", xy.defined() ? describe(xy) : std::string("an undefined tensor"));
  MMGRAD_CHECK(labels.defined() && labels.dtype() == kInt64 && labels.dim() == 1 &&
                   labels.size(0) == xy.size(0),
               "ScatterPlot::add_classes: expects int64 labels [", xy.size(0), "], got ",
               labels.defined() ? describe(labels) : std::string("an undefined tensor"));
  std::vector<double> v = xy.to_vector<double>();
  const int64_t n = xy.size(0), d = xy.size(1);
  std::vector<double> xs(static_cast<size_t>(n)), ys(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) xs[i] = v[i * d], ys[i] = v[i * d + 1];
  return add_classes(xs, ys, labels.to_vector<int64_t>(), class_names, marker, suffix, colors);
}

ScatterPlot& ScatterPlot::add_legend_entry(const std::string& name, const std::string& color,
                                           Marker marker) {
  legend_only_.push_back(Group{name, color, marker, {}, {}, true});
  return *this;
}

ScatterPlot& ScatterPlot::set_point_size(double radius) {
  MMGRAD_CHECK(radius > 0 && radius <= 50, "ScatterPlot::set_point_size: radius must be in ",
               "(0, 50], got ", radius);
  radius_ = radius;
  return *this;
}

ScatterPlot& ScatterPlot::set_opacity(double opacity) {
  MMGRAD_CHECK(opacity > 0 && opacity <= 1, "ScatterPlot::set_opacity: must be in (0, 1], got ",
               opacity);
  opacity_ = opacity;
  return *this;
}

std::string ScatterPlot::to_svg() const {
  constexpr double inf = std::numeric_limits<double>::infinity();
  double x0 = inf, x1 = -inf, y0 = inf, y1 = -inf;
  for (const Group& g : groups_)
    for (size_t i = 0; i < g.xs.size(); ++i) {
      if (!std::isfinite(g.xs[i]) || !std::isfinite(g.ys[i])) continue;
      x0 = std::min(x0, g.xs[i]), x1 = std::max(x1, g.xs[i]);
      y0 = std::min(y0, g.ys[i]), y1 = std::max(y1, g.ys[i]);
    }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  // A little room so that no point sits on the frame.
  double px = 0.04 * (x1 - x0), py = 0.04 * (y1 - y0);
  x0 -= px, x1 += px, y0 -= py, y1 += py;
  std::vector<double> xt = fit_axis(x0, x1, false, false);
  std::vector<double> yt = fit_axis(y0, y1, false, false);

  std::vector<LegendEntry> legend;
  for (const Group& g : groups_)
    if (g.in_legend && !g.name.empty())
      legend.push_back({g.name, g.color, LegendEntry::Point, g.marker, false});
  for (const Group& g : legend_only_)
    legend.push_back({g.name, g.color, LegendEntry::Point, g.marker, false});
  const double lw = legend_width(legend);
  int width = width_;
  const double top = title_space(title_, width);
  const double ylen = height_ - top - 65;
  const double left = left_margin(yt, false, ylabel_, ylen);
  double right = width - 20 - (lw > 0 ? lw + 12 : 0);
  if (right - left < 200) {
    width += static_cast<int>(200 - (right - left));
    right = left + 200;
  }
  // Tall legends (many classes x groups) get a taller figure instead of running off the bottom.
  const double bottom_sp = bottom_space(xlabel_, right - left);
  const int height =
      std::max(height_, static_cast<int>(top + 18 * legend.size() + 8 + bottom_sp + 4));
  Frame f{left, top, right, height - bottom_sp, ylen};
  Scale xs{x0, x1, f.left, f.right, false};
  Scale ys{y0, y1, f.bottom, f.top, false};

  Svg svg(width, height);
  draw_title(svg, width, title_block(title_, width));
  draw_axes(svg, f, xs, xt, ys, yt, xlabel_, ylabel_);
  for (const Group& g : groups_)
    for (size_t i = 0; i < g.xs.size(); ++i)
      if (std::isfinite(g.xs[i]) && std::isfinite(g.ys[i]))
        svg.marker(g.marker, xs(g.xs[i]), ys(g.ys[i]), radius_, g.color, opacity_);
  draw_legend(svg, f.right + 12, f.top, legend);
  return svg.finish();
}

std::string ScatterPlot::to_csv() const {
  std::string out = "group,x,y\n";
  for (const Group& g : groups_)
    for (size_t i = 0; i < g.xs.size(); ++i)
      out += csv_field(g.name) + "," + csv_num(g.xs[i]) + "," + csv_num(g.ys[i]) + "\n";
  return out;
}

}  // namespace mmgrad::plot
