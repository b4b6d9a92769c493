#include <algorithm>
#include <cmath>
#include <limits>

#include "mmgrad/core/error.h"
#include "mmgrad/plot/figure.h"
#include "mmgrad/plot/svg.h"

namespace mmgrad::plot {

using namespace detail;

LinePlot::LinePlot(std::string title, std::string xlabel, std::string ylabel)
    : Chart(std::move(title), std::move(xlabel), std::move(ylabel), 640, 420) {}

LinePlot& LinePlot::add_series(const std::string& name, const std::vector<double>& xs,
                               const std::vector<double>& ys, const std::string& color,
                               bool dashed) {
  MMGRAD_CHECK(xs.size() == ys.size(), "LinePlot::add_series: series '", name, "' has ", xs.size(),
               " x values but ", ys.size(), " y values");
  Series s{name, color.empty() ? palette(series_.size()) : color, xs, ys, dashed, false};
  series_.push_back(std::move(s));
  return *this;
}

LinePlot& LinePlot::add_series(const std::string& name, const std::vector<double>& ys) {
  std::vector<double> xs(ys.size());
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<double>(i);
  return add_series(name, xs, ys);
}

LinePlot& LinePlot::add_hline(const std::string& name, double y, const std::string& color,
                              bool dashed) {
  MMGRAD_CHECK(std::isfinite(y), "LinePlot::add_hline: y must be finite, got ", y);
  series_.push_back(
      Series{name, color.empty() ? palette(series_.size()) : color, {}, {y}, dashed, true});
  return *this;
}

LinePlot& LinePlot::set_log_y(bool on) {
  log_y_ = on;
  return *this;
}

LinePlot& LinePlot::set_log_x(bool on) {
  log_x_ = on;
  return *this;
}

LinePlot& LinePlot::set_markers(bool on) {
  markers_ = on;
  return *this;
}

LinePlot& LinePlot::set_xlim(double lo, double hi) {
  MMGRAD_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi,
               "LinePlot::set_xlim: needs finite lo < hi, got ", lo, ", ", hi);
  has_xlim_ = true;
  xlim_[0] = lo, xlim_[1] = hi;
  return *this;
}

LinePlot& LinePlot::set_ylim(double lo, double hi) {
  MMGRAD_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi,
               "LinePlot::set_ylim: needs finite lo < hi, got ", lo, ", ", hi);
  has_ylim_ = true;
  ylim_[0] = lo, ylim_[1] = hi;
  return *this;
}

std::string LinePlot::to_svg() const {
  MMGRAD_CHECK(!log_y_ || !has_ylim_ || ylim_[0] > 0, "LinePlot: a log y axis needs ylim > 0, ",
               "got [", ylim_[0], ", ", ylim_[1], "]");
  MMGRAD_CHECK(!log_x_ || !has_xlim_ || xlim_[0] > 0, "LinePlot: a log x axis needs xlim > 0, ",
               "got [", xlim_[0], ", ", xlim_[1], "]");
  auto usable = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!log_y_ || y > 0) && (!log_x_ || x > 0);
  };
  // Data extent.
  constexpr double inf = std::numeric_limits<double>::infinity();
  double x0 = inf, x1 = -inf, y0 = inf, y1 = -inf;
  for (const Series& s : series_) {
    if (s.hline) {
      if (!log_y_ || s.ys[0] > 0) y0 = std::min(y0, s.ys[0]), y1 = std::max(y1, s.ys[0]);
      continue;
    }
    for (size_t i = 0; i < s.xs.size(); ++i) {
      if (!usable(s.xs[i], s.ys[i])) continue;
      x0 = std::min(x0, s.xs[i]), x1 = std::max(x1, s.xs[i]);
      y0 = std::min(y0, s.ys[i]), y1 = std::max(y1, s.ys[i]);
    }
  }
  if (x0 > x1) x0 = log_x_ ? 1 : 0, x1 = log_x_ ? 10 : 1;
  if (y0 > y1) y0 = log_y_ ? 0.1 : 0, y1 = log_y_ ? 10 : 1;
  if (has_xlim_) x0 = xlim_[0], x1 = xlim_[1];
  if (has_ylim_) y0 = ylim_[0], y1 = ylim_[1];
  std::vector<double> xt = fit_axis(x0, x1, has_xlim_, log_x_);
  std::vector<double> yt = fit_axis(y0, y1, has_ylim_, log_y_);

  std::vector<LegendEntry> legend;
  for (const Series& s : series_)
    if (!s.name.empty())
      legend.push_back({s.name, s.color, LegendEntry::Line, Marker::Circle, s.dashed});
  const double lw = legend_width(legend);
  int width = width_;
  const double top = title_space(title_, width);
  const double ylen = height_ - top - 65;  // at most the plot height, whatever the x label takes
  const double left = left_margin(yt, log_y_, ylabel_, ylen);
  double right = width - 20 - (lw > 0 ? lw + 12 : 0);
  if (right - left < 200) {  // long legend names: widen the figure rather than squash the plot
    width += static_cast<int>(200 - (right - left));
    right = left + 200;
  }
  // A legend taller than the plot makes the figure taller instead of running off the bottom.
  const double legend_h = 18.0 * legend.size() + 8;
  const double bottom_sp = bottom_space(xlabel_, right - left);
  const int height = static_cast<int>(std::max<double>(height_, top + legend_h + bottom_sp + 4));
  Frame f{left, top, right, height - bottom_sp, ylen};
  Scale xs{x0, x1, f.left, f.right, log_x_};
  Scale ys{y0, y1, f.bottom, f.top, log_y_};

  Svg svg(width, height);
  svg.raw("<defs><clipPath id=\"plot-area\"><rect x=\"" + num(f.left) + "\" y=\"" + num(f.top) +
          "\" width=\"" + num(f.right - f.left) + "\" height=\"" + num(f.bottom - f.top) +
          "\"/></clipPath></defs>\n");
  draw_title(svg, width, title_block(title_, width));
  draw_axes(svg, f, xs, xt, ys, yt, xlabel_, ylabel_);
  svg.raw("<g clip-path=\"url(#plot-area)\">\n");
  for (const Series& s : series_) {
    if (s.hline) {
      if (log_y_ && s.ys[0] <= 0) continue;
      double y = ys(s.ys[0]);
      svg.line(f.left, y, f.right, y, s.color, 1.5, s.dashed ? "stroke-dasharray=\"6 4\"" : "");
      continue;
    }
    // Consecutive usable points form one polyline; an unusable point ends it.
    std::vector<std::pair<double, double>> run;
    auto flush = [&]() {
      if (run.size() == 1 && !markers_)
        svg.marker(Marker::Circle, run[0].first, run[0].second, 2.0, s.color);
      else
        svg.polyline(run, s.color, 2.0, s.dashed);
      run.clear();
    };
    for (size_t i = 0; i < s.xs.size(); ++i) {
      if (!usable(s.xs[i], s.ys[i])) {
        if (!run.empty()) flush();
        continue;
      }
      run.emplace_back(xs(s.xs[i]), ys(s.ys[i]));
    }
    if (!run.empty()) flush();
    if (markers_)
      for (size_t i = 0; i < s.xs.size(); ++i)
        if (usable(s.xs[i], s.ys[i]))
          svg.marker(Marker::Circle, xs(s.xs[i]), ys(s.ys[i]), 3.0, s.color);
  }
  svg.raw("</g>\n");
  draw_legend(svg, f.right + 12, f.top, legend);
  return svg.finish();
}

std::string LinePlot::to_csv() const {
  std::string out = "series,x,y\n";
  for (const Series& s : series_) {
    if (s.hline) {
      out += csv_field(s.name) + ",," + csv_num(s.ys[0]) + "\n";
      continue;
    }
    for (size_t i = 0; i < s.xs.size(); ++i)
      out += csv_field(s.name) + "," + csv_num(s.xs[i]) + "," + csv_num(s.ys[i]) + "\n";
  }
  return out;
}

}  // namespace mmgrad::plot
