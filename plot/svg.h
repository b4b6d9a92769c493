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
// ---- measuring text ------------------------------------------------------------------------
// Width in pixels of s at the given font size. Measured, not guessed: a table of advance widths
// for ASCII, each the LARGER of the two fonts a renderer is likely to use for our font-family
// list: Helvetica/Arial (metric-identical; Liberation Sans too) and DejaVu Sans (the default
// sans-serif of most Linux systems, about 10% wider). Bold text uses DejaVu Sans Bold (wider
// still). Any other code point counts as a full em (wider than any glyph we print: Greek, arrows,
// math signs). So a layout that fits by this measure fits in every one of those fonts.
double text_width(const std::string& s, double font_size, bool bold = false);
// Distance between two lines of text (baseline to baseline), and the part above the baseline.
inline double line_height(double font_size) { return 1.25 * font_size; }

// The box a <text> element covers: centre, half sizes and rotation (degrees, SVG's sense:
// positive turns clockwise on screen), computed from the same x, y, size, anchor and rotation
// the element is written with (rotation about the anchor point (x, y)).
struct TextBox {
  double cx = 0, cy = 0, hw = 0, hh = 0, angle = 0;
};
TextBox text_box(double x, double y, const std::string& s, double size,
                 const std::string& anchor = "start", double angle = 0, bool bold = false);
// Whether two boxes overlap, with `pad` pixels of clearance (separating-axis test, so rotated
// boxes are compared exactly, not by their bounding rectangles).
bool overlap(const TextBox& a, const TextBox& b, double pad = 1.0);
// The axis-aligned rectangle around a box: x0, y0, x1, y1.
struct Rect {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};
Rect bounds(const TextBox& b);

// A text fitted into a width: wrapped at spaces into lines and/or set smaller. fit_text tries
// `size`, then smaller sizes down to `min_size`, with at most `max_lines` lines; if nothing fits
// it uses min_size and as many lines as needed, breaking words that are wider than the space.
// So every line is at most max_width wide: a title is never clipped by the canvas.
struct TextBlock {
  std::vector<std::string> lines;
  double size = 12;
  bool bold = false;
  double height() const { return lines.empty() ? 0 : line_height(size) * lines.size(); }
  double width() const;
};
TextBlock fit_text(const std::string& s, double max_width, double size, double min_size,
                   int max_lines = 2, bool bold = false);

class Svg {
 public:
  Svg(int width, int height);
  void rect(double x, double y, double w, double h, const std::string& fill,
            const std::string& extra = "");
  void line(double x1, double y1, double x2, double y2, const std::string& stroke,
            double width = 1.0, const std::string& extra = "");
  void polyline(const std::vector<std::pair<double, double>>& pts, const std::string& stroke,
                double width, bool dashed, const std::string& extra = "");
  // anchor: "start", "middle" or "end"; extra: more attributes (already escaped; not fill,
  // not transform); angle: rotation in degrees about (x, y). The text's box is remembered.
  void text(double x, double y, const std::string& s, double size = 12,
            const std::string& anchor = "start", const std::string& extra = "",
            const std::string& fill = "#222222", double angle = 0, bool bold = false);
  // A fitted block, its first line's top at `top`, each line anchored at x; returns the bottom.
  double text_block(double x, double top, const TextBlock& b, const std::string& anchor,
                    double angle = 0);
  // Whether a text box would be free: inside the canvas and clear of every text drawn so far.
  bool free(const TextBox& b, double pad = 1.0) const;
  // Reserve an area (a legend, a bar) so later labels avoid it.
  void reserve(const TextBox& b) { boxes_.push_back(b); }
  int width() const { return width_; }
  int height() const { return height_; }
  void marker(Marker m, double x, double y, double r, const std::string& color,
              double opacity = 1.0);
  // Raw markup (already well-formed).
  void raw(const std::string& s) { out_ += s; }
  std::string finish();

 private:
  std::string out_;
  int width_, height_;
  std::vector<TextBox> boxes_;
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
// (ylabel: the y axis label, fitted to `length` pixels, the height of the plot area.)
double left_margin(const std::vector<double>& yticks, bool log, const std::string& ylabel = "",
                   double length = 300);

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
  // The length the y label is fitted to (as left_margin was given it; default: the plot height).
  double ylabel_len = -1;
};
// The x label goes below the tick labels, the y label left of the tick labels; both fitted to
// their axis. x tick labels that would collide are thinned out (every k-th kept).
void draw_axes(Svg& svg, const Frame& f, const Scale& xs, const std::vector<double>& xticks,
               const Scale& ys, const std::vector<double>& yticks, const std::string& xlabel,
               const std::string& ylabel);
// Pixels needed below the plot area for x tick labels and the x label (fitted to `length`).
double bottom_space(const std::string& xlabel, double length);
// The title, fitted to the canvas width (bold, 16 px, down to 11 px, at most 2 lines, then more).
TextBlock title_block(const std::string& title, int width);
// Draws it centred from y = 10; returns the y where the plot area may start.
double draw_title(Svg& svg, int width, const TextBlock& title);
// Space the plot area starts below when the title is `title` on a canvas `width` wide.
double title_space(const std::string& title, int width);
// Axis labels fitted to the length of their axis (13 px, down to 9 px, at most 2 lines).
TextBlock axis_label_block(const std::string& label, double length);

// Tick labels along a horizontal axis at the given centres, `slot` pixels apart: horizontal when
// they fit, else turned 45 degrees, else 90 degrees; and when even upright labels would touch,
// only every k-th label is kept. The result is collision-free by construction (checked with the
// same boxes the tests use).
struct TickLayout {
  double angle = 0;  // 0, -45 or -90
  double size = 11;
  size_t every = 1;   // label i is drawn when i % every == 0
  double height = 0;  // pixels below the axis line the labels take
};
TickLayout layout_ticks(const std::vector<std::string>& labels, double slot, double size = 11);
// Draws them below y (the axis line) at centres xs; returns the boxes drawn.
void draw_ticks(Svg& svg, const std::vector<double>& xs, const std::vector<std::string>& labels,
                double y, const TickLayout& t);
// How far the labels reach left of xs[0] - the most any of them needs (for the left margin).
double ticks_left_overhang(const std::vector<double>& xs, const std::vector<std::string>& labels,
                           const TickLayout& t);

// ---- CSV ---------------------------------------------------------------------------------------
// One CSV field: quoted when it holds a comma, quote or line break (RFC 4180).
std::string csv_field(const std::string& s);
// A number with the fewest digits that read back as the same double ("0.1", "1e-05", "nan").
std::string csv_num(double v);
// Where the CSV of a figure goes: "x/fig.svg" -> "x/fig.csv" (other names get ".csv" added).
std::string csv_path(const std::string& svg_path);

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
