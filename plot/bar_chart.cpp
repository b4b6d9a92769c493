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
  // Value labels in one orientation for the whole chart (a mix reads badly): horizontal if that
  // leaves none out, else turned if that leaves fewer out. When some are left out anyway, the
  // chart is drawn again with a line at the bottom that says where the numbers are.
  size_t dropped = 0, dropped_turned = 0;
  std::string svg = render(false, false, dropped);
  if (dropped == 0) return svg;
  std::string turned = render(false, true, dropped_turned);
  const bool turn = dropped_turned < dropped;
  if (std::min(dropped, dropped_turned) == 0) return turn ? turned : svg;
  return render(true, turn, dropped);
}

std::string BarChart::render(bool note, bool turned, size_t& dropped) const {
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
  const size_t nc = categories_.size(), ns = std::max<size_t>(series_.size(), 1);
  int width = width_;
  const double top = title_space(title_, width);
  const double ylen = height_ - top - 100;
  double left = left_margin(yt, false, ylabel_, ylen);
  double right = width - 20 - (lw > 0 ? lw + 12 : 0);
  if (right - left < 200) {
    width += static_cast<int>(200 - (right - left));
    right = left + 200;
  }
  // Category labels: horizontal, turned or thinned (layout_ticks); turned labels reach left of
  // their bar, so the left margin grows until the first one stays on the canvas.
  double slot = (right - left) / static_cast<double>(nc);
  TickLayout ct;
  std::vector<double> rel(nc);
  for (int pass = 0; pass < 4; ++pass) {
    slot = (right - left) / static_cast<double>(nc);
    for (size_t c = 0; c < nc; ++c) rel[c] = slot * (c + 0.5);
    ct = layout_ticks(categories_, slot, 11);
    const double deficit = ticks_left_overhang(rel, categories_, ct) - (left + 0.5 * slot) + 4;
    if (deficit <= 0) break;
    left += deficit;
    if (right - left < 200) {
      width += static_cast<int>(std::ceil(200 - (right - left)));
      right = left + 200;
    }
  }
  const TextBlock xlab = axis_label_block(xlabel_, right - left);
  const double note_h = note ? line_height(11) + 4 : 0;
  const double bottom_sp = ct.height + (xlabel_.empty() ? 6 : xlab.height() + 10) + note_h;
  const int height = static_cast<int>(std::max<double>(height_, top + 150 + bottom_sp));
  Frame f{left, top, right, height - bottom_sp, ylen};
  Scale ys{y0, y1, f.bottom, f.top, false};

  Svg svg(width, height);
  svg.raw("<defs><clipPath id=\"plot-area\"><rect x=\"" + num(f.left) + "\" y=\"" + num(f.top) +
          "\" width=\"" + num(f.right - f.left) + "\" height=\"" + num(f.bottom - f.top) +
          "\"/></clipPath></defs>\n");
  draw_title(svg, width, title_block(title_, width));
  Scale xs{0, 1, f.left, f.right, false};
  draw_axes(svg, f, xs, {}, ys, yt, "", ylabel_);
  const double group = 0.8 * slot, bar = group / static_cast<double>(ns);
  const double zero = ys(std::clamp(0.0, y0, y1));
  // Bars, and their boxes (a value label must not cover another bar).
  std::vector<TextBox> bar_boxes(series_.size() * nc);
  svg.raw("<g clip-path=\"url(#plot-area)\">\n");
  for (size_t si = 0; si < series_.size(); ++si)
    for (size_t c = 0; c < nc; ++c) {
      double v = series_[si].values[c];
      if (!std::isfinite(v)) continue;
      double x = f.left + slot * c + 0.1 * slot + bar * si;
      double y = ys(v);
      double yc = std::clamp(y, f.top, f.bottom);
      svg.rect(x + 0.5, std::min(y, zero), std::max(bar - 1.0, 1.0), std::abs(zero - y),
               series_[si].color);
      bar_boxes[si * nc + c] =
          TextBox{x + 0.5 * bar, 0.5 * (yc + zero), 0.5 * bar - 0.5, 0.5 * std::abs(zero - yc), 0};
    }
  svg.raw("</g>\n");
  if (y0 < 0 && y1 > 0)
    svg.line(f.left, zero, f.right, zero, "#444444", 1.0, "class=\"zero-marker\"");
  std::vector<double> centers(nc);
  for (size_t c = 0; c < nc; ++c) centers[c] = f.left + rel[c];
  draw_ticks(svg, centers, categories_, f.bottom, ct);
  dropped = 0;
  if (value_labels_) {
    // Each label takes the first of these places (of the chosen orientation) that is clear of
    // every text drawn so far and of the other bars: beyond the bar's end, then inside the bar.
    // A label with no clear place is left out (counted; the note points to the CSV).
    const double size = 10;
    for (size_t si = 0; si < series_.size(); ++si)
      for (size_t c = 0; c < nc; ++c) {
        double v = series_[si].values[c];
        if (!std::isfinite(v)) continue;
        char buf[48];
        std::snprintf(buf, sizeof(buf), "%.*f", decimals_, v);
        const double x = f.left + slot * c + 0.1 * slot + bar * (si + 0.5);
        const double y = std::clamp(ys(v), f.top, f.bottom);
        const bool up = v >= 0;
        // Beyond the bar: 4 px from its end, so that the glyphs' descent (2.5 px) keeps clear of
        // the bar even after rounding.
        struct Place {
          double x, y;
          const char* anchor;
          double angle;
          bool inside;
        };
        const Place places[4] = {
            {x, up ? y - 4 : y + 4 + 0.8 * size, "middle", 0, false},
            {x + 0.35 * size, up ? y - 4 : y + 4, up ? "start" : "end", -90, false},
            {x, up ? y + 3 + 0.8 * size : y - 3 - 0.25 * size, "middle", 0, true},
            {x + 0.35 * size, up ? y + 3 : y - 3, up ? "end" : "start", -90, true}};
        bool placed = false;
        for (const Place& p : places) {
          if ((p.angle != 0) != turned) continue;
          TextBox b = text_box(p.x, p.y, buf, size, p.anchor, p.angle);
          bool ok = svg.free(b, 1.0);
          for (size_t k = 0; ok && k < bar_boxes.size(); ++k)
            if (bar_boxes[k].hw > 0 && !(p.inside && k == si * nc + c) &&
                overlap(b, bar_boxes[k], 0.5))
              ok = false;
          if (ok && !p.inside) {  // beyond the bar but within the plot area (not on the frame)
            Rect r = bounds(b);
            ok = r.y0 >= f.top + 1 && r.y1 <= f.bottom - 1;
          }
          if (ok && p.inside) {  // wholly within its own bar
            Rect r = bounds(b);
            const TextBox& own = bar_boxes[si * nc + c];
            ok = r.x0 >= own.cx - own.hw && r.x1 <= own.cx + own.hw && r.y0 >= own.cy - own.hh &&
                 r.y1 <= own.cy + own.hh;
          }
          if (!ok) continue;
          const std::string fill = p.inside && dark_color(series_[si].color) ? "white" : "#222222";
          svg.text(p.x, p.y, buf, size, p.anchor, "", fill, p.angle);
          placed = true;
          break;
        }
        if (!placed) ++dropped;
      }
  }
  if (!xlabel_.empty())
    svg.text_block(0.5 * (f.left + f.right), f.bottom + ct.height + 4, xlab, "middle");
  draw_legend(svg, f.right + 12, f.top, legend);
  if (note && dropped > 0)
    svg.text_block(8, height - note_h,
                   fit_text(std::to_string(dropped) +
                                " value labels left out (no room): all values are in the .csv "
                                "beside this figure",
                            width - 16, 11, 8, 1),
                   "start");
  return svg.finish();
}

std::string BarChart::to_csv() const {
  std::string out = "category,series,value\n";
  for (const Series& s : series_)
    for (size_t c = 0; c < categories_.size(); ++c)
      out +=
          csv_field(categories_[c]) + "," + csv_field(s.name) + "," + csv_num(s.values[c]) + "\n";
  return out;
}

}  // namespace mmgrad::plot
