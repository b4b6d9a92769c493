#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "mmgrad/core/error.h"
#include "mmgrad/plot/figure.h"
#include "mmgrad/plot/svg.h"

namespace mmgrad::plot {

using namespace detail;

namespace {

constexpr int64_t kMaxSide = 512;  // beyond this an SVG of one element per cell gets unwieldy

std::string format_value(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  std::string s = buf;
  if (s.rfind("-0", 0) == 0 && std::strtod(buf, nullptr) == 0.0) s = s.substr(1);
  return s;
}

}  // namespace

Heatmap::Heatmap(std::string title, const std::vector<std::vector<double>>& values,
                 std::vector<std::string> row_labels, std::vector<std::string> col_labels)
    : Chart(std::move(title), "", "", 0, 0),
      row_labels_(std::move(row_labels)),
      col_labels_(std::move(col_labels)) {
  rows_ = static_cast<int64_t>(values.size());
  cols_ = rows_ ? static_cast<int64_t>(values[0].size()) : 0;
  MMGRAD_CHECK(rows_ > 0 && cols_ > 0, "Heatmap: the matrix is empty");
  for (size_t r = 0; r < values.size(); ++r) {
    MMGRAD_CHECK(static_cast<int64_t>(values[r].size()) == cols_, "Heatmap: row ", r, " has ",
                 values[r].size(), " values but row 0 has ", cols_, " (rows must be equal)");
    values_.insert(values_.end(), values[r].begin(), values[r].end());
  }
  check_labels();
}

Heatmap::Heatmap(std::string title, const Tensor& matrix, std::vector<std::string> row_labels,
                 std::vector<std::string> col_labels)
    : Chart(std::move(title), "", "", 0, 0),
      row_labels_(std::move(row_labels)),
      col_labels_(std::move(col_labels)) {
  MMGRAD_CHECK(matrix.defined() && matrix.dim() == 2 && matrix.dtype() != kBool,
               "Heatmap: expects a 2-D numeric tensor, got ",
               matrix.defined() ? describe(matrix) : std::string("an undefined tensor"));
  rows_ = matrix.size(0);
  cols_ = matrix.size(1);
  MMGRAD_CHECK(rows_ > 0 && cols_ > 0, "Heatmap: the matrix is empty: ", describe(matrix));
  values_ = matrix.to_vector<double>();
  check_labels();
}

void Heatmap::check_labels() const {
  MMGRAD_CHECK(rows_ <= kMaxSide && cols_ <= kMaxSide, "Heatmap: at most ", kMaxSide, "x", kMaxSide,
               " cells can be drawn, got ", rows_, "x", cols_, " (plot a slice of the matrix)");
  MMGRAD_CHECK(row_labels_.empty() || static_cast<int64_t>(row_labels_.size()) == rows_,
               "Heatmap: ", row_labels_.size(), " row labels for ", rows_, " rows");
  MMGRAD_CHECK(col_labels_.empty() || static_cast<int64_t>(col_labels_.size()) == cols_,
               "Heatmap: ", col_labels_.size(), " column labels for ", cols_, " columns");
}

Heatmap& Heatmap::set_colormap(Colormap cmap) {
  cmap_ = cmap;
  return *this;
}

Heatmap& Heatmap::set_range(double vmin, double vmax) {
  MMGRAD_CHECK(std::isfinite(vmin) && std::isfinite(vmax) && vmin < vmax,
               "Heatmap::set_range: needs finite vmin < vmax, got ", vmin, ", ", vmax);
  has_range_ = true;
  vmin_ = vmin, vmax_ = vmax;
  return *this;
}

Heatmap& Heatmap::set_annotate(int mode) {
  MMGRAD_CHECK(mode >= -1 && mode <= 1, "Heatmap::set_annotate: mode must be -1 (auto), 0 ",
               "(never) or 1 (always), got ", mode);
  annotate_ = mode;
  return *this;
}

Heatmap& Heatmap::set_decimals(int decimals) {
  MMGRAD_CHECK(decimals >= 0 && decimals <= 6, "Heatmap::set_decimals: must be in [0, 6], got ",
               decimals);
  decimals_ = decimals;
  return *this;
}

Heatmap& Heatmap::set_cell_size(int pixels) {
  MMGRAD_CHECK(pixels >= 2 && pixels <= 200, "Heatmap::set_cell_size: must be in [2, 200], got ",
               pixels);
  cell_ = pixels;
  return *this;
}

std::string Heatmap::to_svg() const {
  // Colour range and number format.
  double lo = vmin_, hi = vmax_;
  bool integers = true;
  if (!has_range_) {
    lo = INFINITY, hi = -INFINITY;
    for (double v : values_)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (lo > hi) lo = 0, hi = 1;
  }
  for (double v : values_)
    if (std::isfinite(v) && v != std::round(v)) integers = false;
  const int decimals = decimals_ >= 0 ? decimals_ : (integers ? 0 : 2);

  const double cell =
      cell_ > 0 ? cell_ : std::clamp(std::floor(480.0 / std::max(rows_, cols_)), 6.0, 48.0);
  const double font = std::min(12.0, 0.42 * cell);
  double num_w = 0;
  for (double v : values_)
    if (std::isfinite(v)) num_w = std::max(num_w, text_width(format_value(v, decimals), font));
  const bool annotate = annotate_ == 1 || (annotate_ == -1 && cell >= 20 && num_w <= cell - 3);

  // Tick labels: given ones, or indices when the matrix is small enough to read them.
  auto labels_or_index = [](const std::vector<std::string>& given, int64_t n) {
    if (!given.empty() || n > 40) return given;
    std::vector<std::string> idx;
    for (int64_t i = 0; i < n; ++i) idx.push_back(std::to_string(i));
    return idx;
  };
  const std::vector<std::string> rl = labels_or_index(row_labels_, rows_);
  const std::vector<std::string> cl = labels_or_index(col_labels_, cols_);
  const double tick_font = std::clamp(cell * 0.6, 7.0, 11.0);
  double rl_w = 0;
  for (const auto& s : rl) rl_w = std::max(rl_w, text_width(s, tick_font));
  // Column labels: horizontal, turned or thinned out so that no two touch (layout_ticks); row
  // labels: every k-th when the cells are lower than a line of text.
  const TickLayout ct = layout_ticks(cl, cell, tick_font);
  const size_t row_every =
      std::max<size_t>(1, static_cast<size_t>(std::ceil(1.1 * tick_font / cell - 1e-9)));
  const double col_label_h = cl.empty() ? 0 : ct.height;

  const double gw = cols_ * cell, gh = rows_ * cell;
  const TextBlock ylab = axis_label_block(ylabel_, gh);
  std::vector<double> cx0;  // column centres relative to the grid's left edge
  for (size_t c = 0; c < cl.size(); ++c) cx0.push_back((c + 0.5) * cell);
  const double left =
      std::max((ylabel_.empty() ? 10 : 14 + ylab.height()) + rl_w + 8,
               cl.empty() ? 0.0 : ticks_left_overhang(cx0, cl, ct) - 0.5 * cell + 6);
  const double bar_x = left + gw + 18, bar_w = 14;
  // Wide enough for the colour bar's labels, and for the title on one line up to 640 pixels.
  const int width = static_cast<int>(std::max(
      bar_x + bar_w + 64, std::min(text_width(title_, 16, true) + 24, std::max(640.0, gw))));
  const double top = title_space(title_, width);
  const TextBlock xlab = axis_label_block(xlabel_, std::max(gw, 100.0));
  const int height =
      static_cast<int>(top + gh + col_label_h + (xlabel_.empty() ? 10 : xlab.height() + 12));

  Svg svg(width, height);
  draw_title(svg, width, title_block(title_, width));
  const double gap = cell >= 10 ? 1.0 : 0.0;
  for (int64_t r = 0; r < rows_; ++r)
    for (int64_t c = 0; c < cols_; ++c) {
      double v = values_[r * cols_ + c];
      double x = left + c * cell, y = top + r * cell;
      if (!std::isfinite(v)) {
        svg.rect(x, y, cell - gap, cell - gap, "#dddddd");
        continue;
      }
      double t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
      std::string color = colormap_color(cmap_, t);
      svg.rect(x, y, cell - gap, cell - gap, color);
      if (annotate)
        svg.text(x + cell / 2, y + cell / 2 + font * 0.35, format_value(v, decimals), font,
                 "middle", "", dark_color(color) ? "white" : "#222222");
    }
  // Tick labels.
  for (size_t r = 0; r < rl.size(); r += row_every)
    svg.text(left - 6, top + (r + 0.5) * cell + tick_font * 0.35, rl[r], tick_font, "end");
  std::vector<double> cxs;
  for (double x : cx0) cxs.push_back(left + x);
  draw_ticks(svg, cxs, cl, top + gh, ct);
  if (!xlabel_.empty()) svg.text_block(left + gw / 2, top + gh + col_label_h + 4, xlab, "middle");
  if (!ylabel_.empty()) {
    double x = 10, cy = top + gh / 2;
    for (const std::string& l : ylab.lines) {
      svg.text(x + 0.8 * ylab.size, cy, l, ylab.size, "middle", "", "#222222", -90);
      x += line_height(ylab.size);
    }
  }
  // Colour bar: a vertical gradient from lo (bottom) to hi (top), with round-number ticks.
  std::string grad = "<defs><linearGradient id=\"colorbar\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int i = 0; i <= 10; ++i)
    grad += "<stop offset=\"" + num(i / 10.0) + "\" stop-color=\"" +
            colormap_color(cmap_, i / 10.0) + "\"/>";
  svg.raw(grad + "</linearGradient></defs>\n");
  svg.rect(bar_x, top, bar_w, gh, "url(#colorbar)", "stroke=\"#444444\" stroke-width=\"0.5\"");
  double tlo = lo, thi = hi;
  std::vector<double> ticks = fit_axis(tlo, thi, true, false);
  if (hi <= lo) ticks = {lo};
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0;
  Scale s{lo, hi, top + gh, top, false};
  for (double t : ticks) {
    double y = hi > lo ? s(t) : top + gh / 2;
    svg.line(bar_x + bar_w, y, bar_x + bar_w + 4, y, "#444444");
    svg.text(bar_x + bar_w + 7, y + 4, tick_label(t, step), 10);
  }
  return svg.finish();
}

std::string Heatmap::to_csv() const {
  std::string out = "row,column,value\n";
  for (int64_t r = 0; r < rows_; ++r)
    for (int64_t c = 0; c < cols_; ++c) {
      const std::string rn = row_labels_.empty() ? std::to_string(r) : row_labels_[r];
      const std::string cn = col_labels_.empty() ? std::to_string(c) : col_labels_[c];
      out += csv_field(rn) + "," + csv_field(cn) + "," + csv_num(values_[r * cols_ + c]) + "\n";
    }
  return out;
}

}  // namespace mmgrad::plot
