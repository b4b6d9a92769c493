// The SVG vocabulary the charts are drawn with: an element writer that escapes every text and
// formats every number safely, markers, colour scales, and axis ticks with round numbers.
// (Internal to plot/; the public API is plot/figure.h.)
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mmgrad/plot/figure.h"

namespace mmgrad::plot::detail {

// Text safe inside an XML element or a quoted attribute: & < > " ' become entities, control
// characters and bytes that are not valid UTF-8 become '?'.
std::string xml_escape(const std::string& s);
// A coordinate: at most 2 decimals, no "nan"/"inf" (clamped to +-1e6).
std::string num(double v);
// Rough width in pixels of text in a sans-serif font of the given size (for layout only).
double text_width(const std::string& s, double font_size);

class Svg {
 public:
  Svg(int width, int height);
  void rect(double x, double y, double w, double h, const std::string& fill,
            const std::string& extra = "");
  void line(double x1, double y1, double x2, double y2, const std::string& stroke,
            double width = 1.0, const std::string& extra = "");
  void polyline(const std::vector<std::pair<double, double>>& pts, const std::string& stroke,
                double width, bool dashed, const std::string& extra = "");
  // anchor: "start", "middle" or "end"; extra: more attributes (already escaped; not fill).
  void text(double x, double y, const std::string& s, double size = 12,
            const std::string& anchor = "start", const std::string& extra = "",
            const std::string& fill = "#222222");
  void marker(Marker m, double x, double y, double r, const std::string& color,
              double opacity = 1.0);
  // Raw markup (already well-formed).
  void raw(const std::string& s) { out_ += s; }
  std::string finish();

 private:
  std::string out_;
};

// Colour of t in [0, 1] on a colormap, as "#rrggbb"; and whether text on it should be white.
std::string colormap_color(Colormap cmap, double t);
bool dark_color(const std::string& hex);

// "Nice" tick positions covering [lo, hi] (steps of 1, 2 or 5 times a power of ten), about
// `target` of them; the first and last tick enclose the range.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// Ticks for a log axis over [lo, hi] (lo > 0): powers of ten, plus 2x and 5x for short ranges.
std::vector<double> log_ticks(double lo, double hi);
// Tick labels with as many decimals as the step needs ("0.25", "1e-05" for extreme values).
std::string tick_label(double v, double step);

// Ticks for an axis over the data extent [lo, hi]. Unless `fixed`, the range grows to the
// enclosing round ticks (and for a log axis to whole powers of ten); with `fixed` it stays and
// only the ticks inside are kept. A log axis needs lo > 0.
std::vector<double> fit_axis(double& lo, double& hi, bool fixed, bool log);
// Left margin that fits the y tick labels and the rotated y axis label.
double left_margin(const std::vector<double>& yticks, bool log);

// Maps data coordinates to pixels along one axis (linear or log10).
struct Scale {
  double lo = 0, hi = 1;  // data range
  double p0 = 0, p1 = 1;  // pixel range (p1 < p0 for a y axis)
  bool log = false;
  double operator()(double v) const;
};

// Axes frame: grid lines, ticks and tick labels on the left and bottom, axis labels and title.
struct Frame {
  double left, top, right, bottom;  // the plot area in pixels
};
void draw_axes(Svg& svg, const Frame& f, const Scale& xs, const std::vector<double>& xticks,
               const Scale& ys, const std::vector<double>& yticks, const std::string& xlabel,
               const std::string& ylabel);
void draw_title(Svg& svg, int width, const std::string& title);

// A legend box at (x, y): each entry a colour swatch (line, marker or block) and its name.
struct LegendEntry {
  std::string name, color;
  enum Kind { Line, Point, Block } kind = Line;
  Marker marker = Marker::Circle;
  bool dashed = false;
};
double legend_width(const std::vector<LegendEntry>& entries);
void draw_legend(Svg& svg, double x, double y, const std::vector<LegendEntry>& entries);

}  // namespace mmgrad::plot::detail
