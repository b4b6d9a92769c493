#include <algorithm>
#include <cmath>

#include "mmgrad/core/error.h"
#include "mmgrad/plot/figure.h"
#include "mmgrad/plot/svg.h"

namespace mmgrad::plot {

using namespace detail;

Histogram::Histogram(std::string title, std::string xlabel, std::string ylabel)
    : Chart(std::move(title), std::move(xlabel), std::move(ylabel), 640, 420) {}

Histogram& Histogram::set_bins(double lo, double hi, int bins) {
  MMGRAD_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi && bins >= 1 && bins <= 10000,
               "Histogram::set_bins: needs finite lo < hi and 1 <= bins <= 10000, got [", lo, ", ",
               hi, "] and ", bins, " bins");
  MMGRAD_CHECK(series_.empty(), "Histogram::set_bins: call it before add_values");
  lo_ = lo, hi_ = hi, bins_ = bins;
  return *this;
}

Histogram& Histogram::add_values(const std::string& name, const std::vector<double>& values,
                                 const std::string& color) {
  MMGRAD_CHECK(bins_ > 0, "Histogram::add_values: call set_bins first");
  Series s{name, color.empty() ? palette(series_.size()) : color,
           std::vector<double>(static_cast<size_t>(bins_), 0.0), 0};
  // Bin b holds [lo + b w, lo + (b + 1) w); the last bin also holds hi, like torch.histc.
  const double w = (hi_ - lo_) / bins_;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    if (v < lo_ || v > hi_) ++s.clamped;
    const int b = std::clamp(static_cast<int>(std::floor((v - lo_) / w)), 0, bins_ - 1);
    s.counts[static_cast<size_t>(b)] += 1;
  }
  series_.push_back(std::move(s));
  return *this;
}

const std::vector<double>& Histogram::counts(size_t i) const {
  MMGRAD_CHECK(i < series_.size(), "Histogram::counts: series ", i, " of ", series_.size());
  return series_[i].counts;
}

std::string Histogram::to_svg() const {
  MMGRAD_CHECK(bins_ > 0, "Histogram: no bins (call set_bins)");
  double c1 = 0;
  int64_t clamped = 0;
  for (const Series& s : series_) {
    for (double c : s.counts) c1 = std::max(c1, c);
    clamped += s.clamped;
  }
  double c0 = 0;
  if (c1 == 0) c1 = 1;
  std::vector<double> yt = fit_axis(c0, c1, false, false);
  double x0 = lo_, x1 = hi_;
  std::vector<double> xt = fit_axis(x0, x1, true, false);

  std::vector<LegendEntry> legend;
  if (series_.size() > 1)
    for (const Series& s : series_)
      legend.push_back({s.name, s.color, LegendEntry::Block, Marker::Square, false});
  const double lw = legend_width(legend);
  int width = width_;
  const double top = title_space(title_, width);
  const double ylen = height_ - top - 85;
  const double left = left_margin(yt, false, ylabel_, ylen);
  double right = width - 20 - (lw > 0 ? lw + 12 : 0);
  if (right - left < 200) {
    width += static_cast<int>(200 - (right - left));
    right = left + 200;
  }
  const double note_h = clamped > 0 ? line_height(11) + 4 : 0;
  const double bottom_sp = bottom_space(xlabel_, right - left) + note_h;
  const int height = static_cast<int>(std::max<double>(height_, top + 150 + bottom_sp));
  Frame f{left, top, right, height - bottom_sp, ylen};
  Scale xs{x0, x1, f.left, f.right, false};
  Scale ys{c0, c1, f.bottom, f.top, false};

  Svg svg(width, height);
  draw_title(svg, width, title_block(title_, width));
  draw_axes(svg, f, xs, xt, ys, yt, xlabel_, ylabel_);
  // One bar per bin, edge to edge (a histogram's bars touch: the bins tile the axis); several
  // series share each bin side by side.
  const double w = (hi_ - lo_) / bins_;
  const double ns = static_cast<double>(std::max<size_t>(series_.size(), 1));
  for (size_t si = 0; si < series_.size(); ++si)
    for (int b = 0; b < bins_; ++b) {
      const double c = series_[si].counts[static_cast<size_t>(b)];
      if (c <= 0) continue;
      const double xa = xs(lo_ + b * w), xb = xs(lo_ + (b + 1) * w);
      const double bw = (xb - xa) / ns, y = ys(c);
      svg.rect(xa + bw * si, y, bw, f.bottom - y, series_[si].color,
               "stroke=\"white\" stroke-width=\"0.5\"");
    }
  // The zero marker: where the sign of the quantity changes (e.g. a margin: right of it passes).
  if (lo_ < 0 && hi_ > 0) {
    const double x = xs(0.0);
    svg.line(x, f.top, x, f.bottom, "#222222", 1.5, "class=\"zero-marker\"");
    svg.text(x + 4, f.top + 12, "0", 11);
  }
  draw_legend(svg, f.right + 12, f.top, legend);
  if (clamped > 0)
    svg.text_block(8, height - note_h,
                   fit_text(std::to_string(clamped) + " values outside [" + csv_num(lo_) + ", " +
                                csv_num(hi_) + "] are counted in the first / last bin",
                            width - 16, 11, 8, 1),
                   "start");
  return svg.finish();
}

std::string Histogram::to_csv() const {
  std::string out = "series,bin_lo,bin_hi,count\n";
  const double w = (hi_ - lo_) / std::max(bins_, 1);
  for (const Series& s : series_)
    for (int b = 0; b < bins_; ++b)
      out += csv_field(s.name) + "," + csv_num(lo_ + b * w) + "," +
             csv_num(b == bins_ - 1 ? hi_ : lo_ + (b + 1) * w) + "," +
             csv_num(s.counts[static_cast<size_t>(b)]) + "\n";
  return out;
}

}  // namespace mmgrad::plot
