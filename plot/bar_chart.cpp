#include <algorithm>
#include <cmath>
#include <cstdio>

#include "mmgrad/core/error.h"
#include "mmgrad/plot/figure.h"
#include "mmgrad/plot/svg.h"

namespace mmgrad::plot {

using namespace detail;

BarChart::BarChart(std::string title, std::string xlabel, std::string ylabel)
    : Chart(std::move(title), std::move(xlabel), std::move(ylabel), 640, 420) {}

BarChart& BarChart::set_categories(const std::vector<std::string>& categories) {
  MMGRAD_CHECK(!categories.empty(), "BarChart::set_categories: no categories given");
  MMGRAD_CHECK(series_.empty() || series_[0].values.size() == categories.size(),
               "BarChart::set_categories: ", categories.size(), " categories, but the series ",
               "already added have ", series_.empty() ? 0 : series_[0].values.size(), " values");
  categories_ = categories;
  return *this;
}

BarChart& BarChart::add_series(const std::string& name, const std::vector<double>& values,
                               const std::string& color) {
  MMGRAD_CHECK(!categories_.empty(), "BarChart::add_series: call set_categories first");
  MMGRAD_CHECK(values.size() == categories_.size(), "BarChart::add_series: series '", name,
               "' has ", values.size(), " values for ", categories_.size(), " categories");
  series_.push_back(Series{name, color.empty() ? palette(series_.size()) : color, values});
  return *this;
}

BarChart& BarChart::set_value_labels(bool on, int decimals) {
  MMGRAD_CHECK(decimals >= 0 && decimals <= 6, "BarChart::set_value_labels: decimals must be ",
               "in [0, 6], got ", decimals);
  value_labels_ = on;
  decimals_ = decimals;
  return *this;
}

BarChart& BarChart::set_ylim(double lo, double hi) {
  MMGRAD_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi,
               "BarChart::set_ylim: needs finite lo < hi, got ", lo, ", ", hi);
  has_ylim_ = true;
  ylim_[0] = lo, ylim_[1] = hi;
  return *this;
}

std::string BarChart::to_svg() const {
  MMGRAD_CHECK(!categories_.empty(), "BarChart: no categories (call set_categories)");
  // Bars grow from 0, so the axis always shows 0.
  double y0 = 0, y1 = 0;
  for (const Series& s : series_)
    for (double v : s.values)
      if (std::isfinite(v)) y0 = std::min(y0, v), y1 = std::max(y1, v);
  if (y0 == y1) y1 = 1;
  if (has_ylim_) y0 = ylim_[0], y1 = ylim_[1];
  std::vector<double> yt = fit_axis(y0, y1, has_ylim_, false);

  std::vector<LegendEntry> legend;
  if (series_.size() > 1)
    for (const Series& s : series_)
      legend.push_back({s.name, s.color, LegendEntry::Block, Marker::Square, false});
  const double lw = legend_width(legend);
  const double left = left_margin(yt, false);
  const size_t nc = categories_.size(), ns = std::max<size_t>(series_.size(), 1);
  int width = width_;
  double right = width - 20 - (lw > 0 ? lw + 12 : 0);
  if (right - left < 200) {
    width += static_cast<int>(200 - (right - left));
    right = left + 200;
  }
  const double slot = (right - left) / static_cast<double>(nc);
  double label_w = 0;
  for (const auto& c : categories_) label_w = std::max(label_w, text_width(c, 11));
  const bool rotate = label_w > slot - 4;
  const double label_h = rotate ? label_w * 0.6 + 16 : 20;
  const int height = static_cast<int>(std::max<double>(height_, 40 + 150 + label_h + 36));
  Frame f{left, 40, right, height - label_h - (xlabel_.empty() ? 8 : 30)};
  Scale ys{y0, y1, f.bottom, f.top, false};

  Svg svg(width, height);
  svg.raw("<defs><clipPath id=\"plot-area\"><rect x=\"" + num(f.left) + "\" y=\"" + num(f.top) +
          "\" width=\"" + num(f.right - f.left) + "\" height=\"" + num(f.bottom - f.top) +
          "\"/></clipPath></defs>\n");
  draw_title(svg, width, title_);
  Scale xs{0, 1, f.left, f.right, false};
  draw_axes(svg, f, xs, {}, ys, yt, "", ylabel_);
  const double group = 0.8 * slot, bar = group / static_cast<double>(ns);
  const double zero = ys(std::clamp(0.0, y0, y1));
  svg.raw("<g clip-path=\"url(#plot-area)\">\n");
  for (size_t si = 0; si < series_.size(); ++si)
    for (size_t c = 0; c < nc; ++c) {
      double v = series_[si].values[c];
      if (!std::isfinite(v)) continue;
      double x = f.left + slot * c + 0.1 * slot + bar * si;
      double y = ys(v);
      svg.rect(x + 0.5, std::min(y, zero), std::max(bar - 1.0, 1.0), std::abs(zero - y),
               series_[si].color);
    }
  svg.raw("</g>\n");
  if (value_labels_) {
    for (size_t si = 0; si < series_.size(); ++si)
      for (size_t c = 0; c < nc; ++c) {
        double v = series_[si].values[c];
        if (!std::isfinite(v)) continue;
        char buf[48];
        std::snprintf(buf, sizeof(buf), "%.*f", decimals_, v);
        double x = f.left + slot * c + 0.1 * slot + bar * (si + 0.5);
        double y = std::clamp(ys(v), f.top, f.bottom);
        svg.text(x, v >= 0 ? y - 3 : y + 11, buf, 9, "middle");
      }
  }
  if (y0 < 0 && y1 > 0) svg.line(f.left, zero, f.right, zero, "#444444");
  for (size_t c = 0; c < nc; ++c) {
    double x = f.left + slot * (c + 0.5), y = f.bottom + 15;
    if (rotate)
      svg.text(x, y, categories_[c], 11, "end",
               "transform=\"rotate(-35 " + num(x) + " " + num(y) + ")\"");
    else
      svg.text(x, y, categories_[c], 11, "middle");
  }
  if (!xlabel_.empty()) svg.text(0.5 * (f.left + f.right), height - 10, xlabel_, 13, "middle");
  draw_legend(svg, f.right + 12, f.top, legend);
  return svg.finish();
}

}  // namespace mmgrad::plot
