#include "mmgrad/plot/svg.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "mmgrad/core/error.h"
#include "mmgrad/core/file_util.h"

namespace mmgrad::plot {

std::string palette(size_t i) {
  // A qualitative palette whose colours stay distinguishable next to each other.
  static const char* const colors[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                       "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  return colors[i % 10];
}

void Chart::save(const std::string& path) const { write_file_atomic(path, to_svg(), "plot::save"); }

void Chart::set_size(int width, int height) {
  MMGRAD_CHECK(width >= 100 && height >= 100 && width <= 10000 && height <= 10000,
               "plot::set_size: width and height must be in [100, 10000], got ", width, "x",
               height);
  width_ = width;
  height_ = height;
}

namespace detail {

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 8);
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&apos;";
          break;
        default:
          // XML 1.0 allows no control characters but tab, newline and carriage return.
          out += (c < 0x20 && c != '\t' && c != '\n' && c != '\r') ? '?' : static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: lead byte, then continuation bytes 10xxxxxx, with the tighter ranges
    // that exclude overlong forms, surrogates (U+D800..DFFF) and code points above U+10FFFF.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      unsigned char b = p[i + k];
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    // U+FFFE and U+FFFF are not XML characters either.
    if (ok && len == 3 && c == 0xEF && p[i + 1] == 0xBF && p[i + 2] >= 0xBE) ok = false;
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

std::string num(double v) {
  if (std::isnan(v)) v = 0;
  v = std::clamp(v, -1e6, 1e6);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

double text_width(const std::string& s, double font_size) {
  // Average advance of a sans-serif glyph is a little over half the font size; count UTF-8
  // code points, not bytes.
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  return 0.58 * font_size * static_cast<double>(chars);
}

Svg::Svg(int width, int height) {
  out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out_ += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
          "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) +
          " " + std::to_string(height) + "\" font-family=\"Helvetica, Arial, sans-serif\">\n";
  out_ += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(width) + "\" height=\"" +
          std::to_string(height) + "\" fill=\"white\"/>\n";
}

void Svg::rect(double x, double y, double w, double h, const std::string& fill,
               const std::string& extra) {
  out_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(std::max(w, 0.0)) +
          "\" height=\"" + num(std::max(h, 0.0)) + "\" fill=\"" + xml_escape(fill) + "\"" +
          (extra.empty() ? "" : " " + extra) + "/>\n";
}

void Svg::line(double x1, double y1, double x2, double y2, const std::string& stroke, double width,
               const std::string& extra) {
  out_ += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" +
          num(y2) + "\" stroke=\"" + xml_escape(stroke) + "\" stroke-width=\"" + num(width) + "\"" +
          (extra.empty() ? "" : " " + extra) + "/>\n";
}

void Svg::polyline(const std::vector<std::pair<double, double>>& pts, const std::string& stroke,
                   double width, bool dashed, const std::string& extra) {
  if (pts.empty()) return;
  out_ += "<polyline fill=\"none\" stroke=\"" + xml_escape(stroke) + "\" stroke-width=\"" +
          num(width) + "\" stroke-linejoin=\"round\"";
  if (dashed) out_ += " stroke-dasharray=\"6 4\"";
  if (!extra.empty()) out_ += " " + extra;
  out_ += " points=\"";
  for (size_t i = 0; i < pts.size(); ++i) {
    if (i) out_ += ' ';
    out_ += num(pts[i].first) + "," + num(pts[i].second);
  }
  out_ += "\"/>\n";
}

void Svg::text(double x, double y, const std::string& s, double size, const std::string& anchor,
               const std::string& extra, const std::string& fill) {
  out_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(size) +
          "\" text-anchor=\"" + anchor + "\" fill=\"" + xml_escape(fill) + "\"" +
          (extra.empty() ? "" : " " + extra) + ">" + xml_escape(s) + "</text>\n";
}

void Svg::marker(Marker m, double x, double y, double r, const std::string& color, double opacity) {
  const std::string c = xml_escape(color);
  const std::string style = " fill=\"" + c + "\" fill-opacity=\"" + num(opacity) +
                            "\" stroke=\"#333333\" stroke-width=\"0.5\"";
  switch (m) {
    case Marker::Circle:
      out_ += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"" + num(r) + "\"" + style +
              "/>\n";
      break;
    case Marker::Square: {
      double h = 0.9 * r;
      out_ += "<rect x=\"" + num(x - h) + "\" y=\"" + num(y - h) + "\" width=\"" + num(2 * h) +
              "\" height=\"" + num(2 * h) + "\"" + style + "/>\n";
      break;
    }
    case Marker::Triangle:
      out_ += "<polygon points=\"" + num(x) + "," + num(y - 1.15 * r) + " " + num(x - r) + "," +
              num(y + 0.75 * r) + " " + num(x + r) + "," + num(y + 0.75 * r) + "\"" + style +
              "/>\n";
      break;
    case Marker::Diamond:
      out_ += "<polygon points=\"" + num(x) + "," + num(y - 1.25 * r) + " " + num(x + r) + "," +
              num(y) + " " + num(x) + "," + num(y + 1.25 * r) + " " + num(x - r) + "," + num(y) +
              "\"" + style + "/>\n";
      break;
    case Marker::Cross:
    case Marker::Plus: {
      std::string d = m == Marker::Cross
                          ? "M" + num(x - r) + " " + num(y - r) + "L" + num(x + r) + " " +
                                num(y + r) + "M" + num(x - r) + " " + num(y + r) + "L" +
                                num(x + r) + " " + num(y - r)
                          : "M" + num(x - r) + " " + num(y) + "L" + num(x + r) + " " + num(y) +
                                "M" + num(x) + " " + num(y - r) + "L" + num(x) + " " + num(y + r);
      out_ += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + c + "\" stroke-opacity=\"" +
              num(opacity) + "\" stroke-width=\"2\"/>\n";
      break;
    }
  }
}

std::string Svg::finish() {
  out_ += "</svg>\n";
  return std::move(out_);
}

// ---- colours -----------------------------------------------------------------------------------

namespace {

struct Rgb {
  double r, g, b;
};

Rgb parse_hex(const std::string& hex) {
  auto h = [&](size_t i) { return std::stoi(hex.substr(i, 2), nullptr, 16) / 255.0; };
  return {h(1), h(3), h(5)};
}

std::string to_hex(Rgb c) {
  char buf[8];
  auto b = [](double v) { return static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * 255)); };
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", b(c.r), b(c.g), b(c.b));
  return buf;
}

const std::vector<std::string>& anchors(Colormap cmap) {
  // Evenly spaced samples of each colour scale, interpolated linearly in between.
  static const std::vector<std::string> viridis = {"#440154", "#482878", "#3e4989", "#31688e",
                                                   "#26828e", "#1f9e89", "#35b779", "#6ece58",
                                                   "#b5de2b", "#fde725"};
  static const std::vector<std::string> blues = {"#f7fbff", "#deebf7", "#c6dbef",
                                                 "#9ecae1", "#6baed6", "#4292c6",
                                                 "#2171b5", "#08519c", "#08306b"};
  static const std::vector<std::string> red_blue = {"#2166ac", "#4393c3", "#92c5de",
                                                    "#d1e5f0", "#f7f7f7", "#fddbc7",
                                                    "#f4a582", "#d6604d", "#b2182b"};
  switch (cmap) {
    case Colormap::Blues:
      return blues;
    case Colormap::RedBlue:
      return red_blue;
    default:
      return viridis;
  }
}

}  // namespace

std::string colormap_color(Colormap cmap, double t) {
  const std::vector<std::string>& a = anchors(cmap);
  if (std::isnan(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * static_cast<double>(a.size() - 1);
  size_t i = std::min(static_cast<size_t>(t), a.size() - 2);
  double f = t - static_cast<double>(i);
  Rgb x = parse_hex(a[i]), y = parse_hex(a[i + 1]);
  return to_hex({x.r + f * (y.r - x.r), x.g + f * (y.g - x.g), x.b + f * (y.b - x.b)});
}

bool dark_color(const std::string& hex) {
  if (hex.size() != 7 || hex[0] != '#' ||
      !std::all_of(hex.begin() + 1, hex.end(), [](char c) { return std::isxdigit(c) != 0; }))
    return false;
  Rgb c = parse_hex(hex);
  return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b < 0.5;
}

// ---- ticks -------------------------------------------------------------------------------------

namespace {

// The "nice" step nearest x: 1, 2 or 5 times a power of ten (after Heckbert's tick labelling in
// Graphics Gems, 1990, without his rounding of the whole range first, which often leaves only 3-4
// ticks).
double nice_step(double x) {
  double e = std::floor(std::log10(x));
  double f = x / std::pow(10.0, e);
  double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nf * std::pow(10.0, e);
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(lo))) {
    double pad = lo == 0 ? 1.0 : 0.1 * std::abs(lo);
    lo -= pad;
    hi += pad;
  }
  target = std::max(target, 2);
  double step = nice_step((hi - lo) / (target - 1));
  double start = std::floor(lo / step) * step, end = std::ceil(hi / step) * step;
  std::vector<double> t;
  for (int i = 0; i < 100; ++i) {
    double v = start + i * step;
    if (v > end + 0.5 * step) break;
    if (std::abs(v) < 1e-9 * step) v = 0;  // no "-0" or 1e-17 from rounding
    t.push_back(v);
  }
  return t;
}

std::vector<double> log_ticks(double lo, double hi) {
  int e0 = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int e1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (e1 <= e0) e1 = e0 + 1;
  std::vector<double> t;
  int every = std::max(1, (e1 - e0 + 7) / 8);
  for (int e = e0; e <= e1; e += every) {
    double p = std::pow(10.0, e);
    t.push_back(p);
    if (e1 - e0 <= 2 && e < e1) {
      t.push_back(2 * p);
      t.push_back(5 * p);
    }
  }
  if (t.back() < std::pow(10.0, e1)) t.push_back(std::pow(10.0, e1));
  return t;
}

std::string tick_label(double v, double step) {
  char buf[32];
  if (v == 0) return "0";
  double a = std::abs(v);
  if (a >= 1e6 || a < 1e-4 || step < 1e-4)
    std::snprintf(buf, sizeof(buf), "%.3g", v);
  else {
    int d = step > 0 ? std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9))) : 2;
    // A step like 0.25 needs one more digit than its order of magnitude says.
    double scaled = step * std::pow(10.0, d);
    if (std::abs(scaled - std::round(scaled)) > 1e-6) ++d;
    std::snprintf(buf, sizeof(buf), "%.*f", std::min(d, 6), v);
  }
  return buf;
}

std::vector<double> fit_axis(double& lo, double& hi, bool fixed, bool log) {
  std::vector<double> t = log ? log_ticks(lo, hi) : nice_ticks(lo, hi);
  if (fixed) {
    std::vector<double> inside;
    const double eps = 1e-9 * std::max(std::abs(lo), std::abs(hi));
    for (double v : t)
      if (v >= lo - eps && v <= hi + eps) inside.push_back(v);
    return inside;
  }
  lo = t.front();
  hi = t.back();
  return t;
}

double left_margin(const std::vector<double>& yticks, bool log) {
  const double step = yticks.size() > 1 ? yticks[1] - yticks[0] : 1.0;
  double w = 0;
  for (double t : yticks) w = std::max(w, text_width(tick_label(t, log ? t : step), 11));
  return std::max(55.0, w + 40);
}

double Scale::operator()(double v) const {
  double a = lo, b = hi, x = v;
  if (log) {
    a = std::log10(lo);
    b = std::log10(hi);
    x = std::log10(v);
  }
  if (b == a) return 0.5 * (p0 + p1);
  return p0 + (x - a) / (b - a) * (p1 - p0);
}

// ---- frame and legend --------------------------------------------------------------------------

void draw_title(Svg& svg, int width, const std::string& title) {
  if (!title.empty()) svg.text(width / 2.0, 24, title, 16, "middle", "font-weight=\"bold\"");
}

void draw_axes(Svg& svg, const Frame& f, const Scale& xs, const std::vector<double>& xticks,
               const Scale& ys, const std::vector<double>& yticks, const std::string& xlabel,
               const std::string& ylabel) {
  const double ystep = yticks.size() > 1 ? yticks[1] - yticks[0] : 1.0;
  const double xstep = xticks.size() > 1 ? xticks[1] - xticks[0] : 1.0;
  for (double t : yticks) {
    double y = ys(t);
    svg.line(f.left, y, f.right, y, "#e6e6e6");
    svg.line(f.left - 4, y, f.left, y, "#444444");
    svg.text(f.left - 7, y + 4, tick_label(t, ys.log ? t : ystep), 11, "end");
  }
  for (double t : xticks) {
    double x = xs(t);
    svg.line(x, f.top, x, f.bottom, "#e6e6e6");
    svg.line(x, f.bottom, x, f.bottom + 4, "#444444");
    svg.text(x, f.bottom + 17, tick_label(t, xs.log ? t : xstep), 11, "middle");
  }
  svg.rect(f.left, f.top, f.right - f.left, f.bottom - f.top, "none",
           "stroke=\"#444444\" stroke-width=\"1\"");
  if (!xlabel.empty()) svg.text(0.5 * (f.left + f.right), f.bottom + 38, xlabel, 13, "middle");
  if (!ylabel.empty()) {
    double cx = 16, cy = 0.5 * (f.top + f.bottom);
    svg.text(cx, cy, ylabel, 13, "middle",
             "transform=\"rotate(-90 " + num(cx) + " " + num(cy) + ")\"");
  }
}

double legend_width(const std::vector<LegendEntry>& entries) {
  double w = 0;
  for (const LegendEntry& e : entries) w = std::max(w, text_width(e.name, 12));
  return entries.empty() ? 0 : w + 44;
}

void draw_legend(Svg& svg, double x, double y, const std::vector<LegendEntry>& entries) {
  if (entries.empty()) return;
  const double row = 18, w = legend_width(entries), h = row * entries.size() + 8;
  svg.rect(x, y, w, h, "white", "stroke=\"#cccccc\" stroke-width=\"1\" fill-opacity=\"0.9\"");
  for (size_t i = 0; i < entries.size(); ++i) {
    const LegendEntry& e = entries[i];
    double cy = y + 4 + row * (i + 0.5);
    switch (e.kind) {
      case LegendEntry::Line:
        svg.line(x + 8, cy, x + 30, cy, e.color, 2.5, e.dashed ? "stroke-dasharray=\"6 4\"" : "");
        break;
      case LegendEntry::Point:
        svg.marker(e.marker, x + 19, cy, 4.5, e.color);
        break;
      case LegendEntry::Block:
        svg.rect(x + 12, cy - 6, 14, 12, e.color);
        break;
    }
    svg.text(x + 36, cy + 4, e.name, 12);
  }
}

}  // namespace detail
}  // namespace mmgrad::plot
