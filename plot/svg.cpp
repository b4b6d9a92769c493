#include "mmgrad/plot/svg.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
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

void Chart::save(const std::string& path) const {
  // The data first, then the figure: both atomically, so neither is ever seen half-written.
  const std::string svg = to_svg(), csv = to_csv();
  write_file_atomic(detail::csv_path(path), csv, "plot::save");
  write_file_atomic(path, svg, "plot::save");
}

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

double text_width(const std::string& s, double font_size, bool bold) {
  // Advance widths of the printable ASCII characters ' ' .. '~' in thousandths of the font size:
  // per character the larger of Helvetica's (Adobe's AFM metrics; Arial and Liberation Sans share
  // them) and DejaVu Sans's (read from DejaVuSans.ttf's hmtx table); bold: Helvetica-Bold and
  // DejaVu Sans Bold. Whichever of these the viewer has, the real text is no wider than this.
  static constexpr unsigned short regular[95] = {
      318,  401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337,
      636,  636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 556,
      1015, 684, 686, 722, 770, 667, 611, 778, 752, 295, 500, 667, 557, 863, 748, 787,
      667,  787, 722, 667, 611, 732, 684, 989, 685, 667, 685, 390, 337, 390, 838, 556,
      500,  613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612,
      635,  635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
  };
  static constexpr unsigned short heavy[95] = {
      348,  456, 521, 838, 696, 1002, 872, 306,  457, 457, 523, 838, 380, 415,  380, 365,
      696,  696, 696, 696, 696, 696,  696, 696,  696, 696, 400, 400, 838, 838,  838, 611,
      1000, 774, 762, 734, 830, 683,  683, 821,  837, 372, 556, 775, 637, 995,  837, 850,
      733,  850, 770, 720, 682, 812,  774, 1103, 771, 724, 725, 457, 365, 457,  838, 556,
      500,  675, 716, 593, 716, 678,  435, 716,  712, 343, 343, 665, 343, 1042, 712, 687,
      716,  716, 493, 595, 478, 712,  652, 924,  645, 652, 582, 712, 365, 712,  838,
  };
  double units = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = p[i];
    if (c >= 32 && c < 127)
      units += bold ? heavy[c - 32] : regular[c - 32];
    else if ((c & 0xC0) != 0x80)  // the first byte of any other code point: a full em
      units += 1000;
  }
  return units * font_size / 1000.0;
}

TextBox text_box(double x, double y, const std::string& s, double size, const std::string& anchor,
                 double angle, bool bold) {
  // Unrotated, the text runs from x0 to x0 + w along the baseline y; glyphs reach about 0.8 em
  // above the baseline and 0.25 em below it (descenders).
  const double w = text_width(s, size, bold);
  const double x0 = anchor == "middle" ? x - w / 2 : anchor == "end" ? x - w : x;
  const double ux = x0 + w / 2 - x, uy = (0.25 * size - 0.8 * size) / 2;  // centre, from (x, y)
  const double a = angle * 3.14159265358979323846 / 180.0;
  const double c = std::cos(a), sn = std::sin(a);
  return TextBox{x + c * ux - sn * uy, y + sn * ux + c * uy, w / 2, 0.525 * size, angle};
}

namespace {
// The four corners of a box.
std::array<std::pair<double, double>, 4> corners(const TextBox& b) {
  const double a = b.angle * 3.14159265358979323846 / 180.0;
  const double c = std::cos(a), s = std::sin(a);
  std::array<std::pair<double, double>, 4> out;
  const double sx[4] = {-1, 1, 1, -1}, sy[4] = {-1, -1, 1, 1};
  for (int i = 0; i < 4; ++i) {
    double dx = sx[i] * b.hw, dy = sy[i] * b.hh;
    out[i] = {b.cx + c * dx - s * dy, b.cy + s * dx + c * dy};
  }
  return out;
}
}  // namespace

bool overlap(const TextBox& a, const TextBox& b, double pad) {
  // Two convex shapes are apart exactly when, on one of their edge normals, their projections
  // are apart (the separating axis theorem). A rectangle has two distinct normals.
  const auto ca = corners(a), cb = corners(b);
  for (const TextBox* box : {&a, &b}) {
    const double r = box->angle * 3.14159265358979323846 / 180.0;
    const double axes[2][2] = {{std::cos(r), std::sin(r)}, {-std::sin(r), std::cos(r)}};
    for (const auto& ax : axes) {
      double amin = 1e300, amax = -1e300, bmin = 1e300, bmax = -1e300;
      for (const auto& [x, y] : ca) {
        double d = x * ax[0] + y * ax[1];
        amin = std::min(amin, d), amax = std::max(amax, d);
      }
      for (const auto& [x, y] : cb) {
        double d = x * ax[0] + y * ax[1];
        bmin = std::min(bmin, d), bmax = std::max(bmax, d);
      }
      if (amax + pad <= bmin || bmax + pad <= amin) return false;
    }
  }
  return true;
}

Rect bounds(const TextBox& b) {
  Rect r{1e300, 1e300, -1e300, -1e300};
  for (const auto& [x, y] : corners(b)) {
    r.x0 = std::min(r.x0, x), r.y0 = std::min(r.y0, y);
    r.x1 = std::max(r.x1, x), r.y1 = std::max(r.y1, y);
  }
  return r;
}

double TextBlock::width() const {
  double w = 0;
  for (const std::string& l : lines) w = std::max(w, text_width(l, size, bold));
  return w;
}

namespace {

// Greedy word wrap: as many words on a line as fit. A word wider than the line is broken
// between code points when `break_words`, else left on its own (too wide) line.
std::vector<std::string> wrap(const std::string& s, double max_width, double size, bool bold,
                              bool break_words) {
  std::vector<std::string> words, lines;
  std::string w;
  for (char ch : s) {
    if (ch == ' ' || ch == '\n') {
      if (!w.empty()) words.push_back(w), w.clear();
    } else {
      w += ch;
    }
  }
  if (!w.empty()) words.push_back(w);
  std::string line;
  for (std::string word : words) {
    std::string trial = line.empty() ? word : line + " " + word;
    if (text_width(trial, size, bold) <= max_width) {
      line = trial;
      continue;
    }
    if (!line.empty()) lines.push_back(line), line.clear();
    while (break_words && text_width(word, size, bold) > max_width) {
      // The longest prefix (whole UTF-8 code points, at least one) that fits.
      size_t cut = 0, next = 0;
      while (next < word.size()) {
        size_t n = next + 1;
        while (n < word.size() && (static_cast<unsigned char>(word[n]) & 0xC0) == 0x80) ++n;
        if (cut > 0 && text_width(word.substr(0, n), size, bold) > max_width) break;
        cut = next = n;
      }
      lines.push_back(word.substr(0, cut));
      word = word.substr(cut);
    }
    line = word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

}  // namespace

TextBlock fit_text(const std::string& s, double max_width, double size, double min_size,
                   int max_lines, bool bold) {
  max_width = std::max(max_width, 10.0);
  min_size = std::min(min_size, size);
  for (double sz = size; sz >= min_size - 1e-9; sz -= 0.5) {
    std::vector<std::string> lines = wrap(s, max_width, sz, bold, false);
    bool ok = static_cast<int>(lines.size()) <= std::max(max_lines, 1);
    for (const std::string& l : lines) ok = ok && text_width(l, sz, bold) <= max_width;
    if (ok) return TextBlock{lines, sz, bold};
  }
  return TextBlock{wrap(s, max_width, min_size, bold, true), min_size, bold};
}

Svg::Svg(int width, int height) : width_(width), height_(height) {
  out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out_ += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
          "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) +
          " " + std::to_string(height) +
          "\" font-family=\"Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif\">\n";
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
               const std::string& extra, const std::string& fill, double angle, bool bold) {
  std::string attrs = extra;
  if (bold) attrs += std::string(attrs.empty() ? "" : " ") + "font-weight=\"bold\"";
  if (angle != 0)
    attrs += std::string(attrs.empty() ? "" : " ") + "transform=\"rotate(" + num(angle) + " " +
             num(x) + " " + num(y) + ")\"";
  out_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(size) +
          "\" text-anchor=\"" + anchor + "\" fill=\"" + xml_escape(fill) + "\"" +
          (attrs.empty() ? "" : " " + attrs) + ">" + xml_escape(s) + "</text>\n";
  boxes_.push_back(text_box(x, y, s, size, anchor, angle, bold));
}

double Svg::text_block(double x, double top, const TextBlock& b, const std::string& anchor,
                       double angle) {
  // Baselines sit 0.8 em below each line's top (the ascent of the fonts we measure).
  double y = top;
  for (const std::string& l : b.lines) {
    text(x, y + 0.8 * b.size, l, b.size, anchor, "", "#222222", angle, b.bold);
    y += line_height(b.size);
  }
  return y;
}

bool Svg::free(const TextBox& b, double pad) const {
  Rect r = bounds(b);
  if (r.x0 < 0 || r.y0 < 0 || r.x1 > width_ || r.y1 > height_) return false;
  for (const TextBox& o : boxes_)
    if (overlap(b, o, pad)) return false;
  return true;
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

double left_margin(const std::vector<double>& yticks, bool log, const std::string& ylabel,
                   double length) {
  const double step = yticks.size() > 1 ? yticks[1] - yticks[0] : 1.0;
  double w = 0;
  for (double t : yticks) w = std::max(w, text_width(tick_label(t, log ? t : step), 11));
  // tick mark and gap (11) + tick labels + gap (8) + the turned y label's lines + 6 of border
  const double label = ylabel.empty() ? 0 : axis_label_block(ylabel, length).height() + 8;
  return std::max(55.0, 11 + w + label + 6);
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

TextBlock title_block(const std::string& title, int width) {
  if (title.empty()) return TextBlock{};
  return fit_text(title, width - 20.0, 16, 11, 2, true);
}

double draw_title(Svg& svg, int width, const TextBlock& title) {
  if (title.lines.empty()) return 16;
  return svg.text_block(width / 2.0, 8, title, "middle") + 10;
}

double title_space(const std::string& title, int width) {
  return title.empty() ? 16 : 8 + title_block(title, width).height() + 10;
}

TextBlock axis_label_block(const std::string& label, double length) {
  if (label.empty()) return TextBlock{};
  return fit_text(label, std::max(length, 40.0), 13, 9, 2);
}

double bottom_space(const std::string& xlabel, double length) {
  // tick marks and tick labels (22 px), then the x label's lines and a border
  return 24 + (xlabel.empty() ? 0 : axis_label_block(xlabel, length).height() + 8);
}

namespace {
// The boxes of tick labels drawn as draw_ticks draws them.
std::vector<TextBox> tick_boxes(const std::vector<double>& xs,
                                const std::vector<std::string>& labels, double y,
                                const TickLayout& t) {
  std::vector<TextBox> out;
  for (size_t i = 0; i < xs.size() && i < labels.size(); ++i) {
    if (i % t.every) continue;
    if (t.angle == 0)
      out.push_back(text_box(xs[i], y + 4 + 0.8 * t.size, labels[i], t.size, "middle"));
    else  // turned about the label's end, just below the tick
      out.push_back(text_box(xs[i] + 0.3 * t.size, y + 6, labels[i], t.size, "end", t.angle));
  }
  return out;
}
}  // namespace

TickLayout layout_ticks(const std::vector<std::string>& labels, double slot, double size) {
  // Try, in order of readability: horizontal at `size` or a little smaller, then turned by 45
  // and by 90 degrees; each is checked with the real boxes of neighbouring labels. If none is
  // clear, keep every k-th label upright, the smallest k that is.
  std::vector<double> xs(labels.size());
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = slot * (i + 0.5);
  auto clear = [&](const TickLayout& t) {
    std::vector<TextBox> b = tick_boxes(xs, labels, 0, t);
    for (size_t i = 1; i < b.size(); ++i)
      if (overlap(b[i - 1], b[i], 2.0)) return false;
    return true;
  };
  auto finish = [&](TickLayout t) {
    double h = 0;
    for (const TextBox& b : tick_boxes(xs, labels, 0, t)) h = std::max(h, bounds(b).y1);
    t.height = h + 2;
    return t;
  };
  for (double sz : {size, size - 1, size - 2})
    if (TickLayout t{0, sz, 1, 0}; clear(t)) return finish(t);
  for (double angle : {-45.0, -90.0})
    if (TickLayout t{angle, size, 1, 0}; clear(t)) return finish(t);
  for (size_t every = 2; every <= labels.size(); ++every)
    if (TickLayout t{-90, size, every, 0}; clear(t)) return finish(t);
  return finish(TickLayout{-90, size, std::max<size_t>(labels.size(), 1), 0});
}

void draw_ticks(Svg& svg, const std::vector<double>& xs, const std::vector<std::string>& labels,
                double y, const TickLayout& t) {
  for (size_t i = 0; i < xs.size() && i < labels.size(); ++i) {
    if (i % t.every) continue;
    if (t.angle == 0)
      svg.text(xs[i], y + 4 + 0.8 * t.size, labels[i], t.size, "middle");
    else
      svg.text(xs[i] + 0.3 * t.size, y + 6, labels[i], t.size, "end", "", "#222222", t.angle);
  }
}

double ticks_left_overhang(const std::vector<double>& xs, const std::vector<std::string>& labels,
                           const TickLayout& t) {
  double need = 0;
  for (const TextBox& b : tick_boxes(xs, labels, 0, t))
    need = std::max(need, (xs.empty() ? 0 : xs[0]) - bounds(b).x0);
  return need;
}

void draw_axes(Svg& svg, const Frame& f, const Scale& xs, const std::vector<double>& xticks,
               const Scale& ys, const std::vector<double>& yticks, const std::string& xlabel,
               const std::string& ylabel) {
  const double ystep = yticks.size() > 1 ? yticks[1] - yticks[0] : 1.0;
  const double xstep = xticks.size() > 1 ? xticks[1] - xticks[0] : 1.0;
  double tick_w = 0;
  for (double t : yticks) {
    double y = ys(t);
    svg.line(f.left, y, f.right, y, "#e6e6e6");
    svg.line(f.left - 4, y, f.left, y, "#444444");
    std::string l = tick_label(t, ys.log ? t : ystep);
    tick_w = std::max(tick_w, text_width(l, 11));
    svg.text(f.left - 7, y + 4, l, 11, "end");
  }
  // x tick labels: every k-th when neighbours would touch (long numbers on a narrow plot).
  std::vector<double> px;
  std::vector<std::string> labels;
  for (double t : xticks) {
    double x = xs(t);
    svg.line(x, f.top, x, f.bottom, "#e6e6e6");
    svg.line(x, f.bottom, x, f.bottom + 4, "#444444");
    px.push_back(x);
    labels.push_back(tick_label(t, xs.log ? t : xstep));
  }
  size_t every = 1;
  for (; every < std::max<size_t>(labels.size(), 1); ++every) {
    bool ok = true;
    TextBox prev;
    bool have = false;
    for (size_t i = 0; i < labels.size(); i += every) {
      TextBox b = text_box(px[i], f.bottom + 17, labels[i], 11, "middle");
      if (have && overlap(prev, b, 3.0)) ok = false;
      prev = b, have = true;
    }
    if (ok) break;
  }
  for (size_t i = 0; i < labels.size(); i += every)
    svg.text(px[i], f.bottom + 17, labels[i], 11, "middle");
  svg.rect(f.left, f.top, f.right - f.left, f.bottom - f.top, "none",
           "stroke=\"#444444\" stroke-width=\"1\"");
  if (!xlabel.empty())
    svg.text_block(0.5 * (f.left + f.right), f.bottom + 24,
                   axis_label_block(xlabel, f.right - f.left), "middle");
  if (!ylabel.empty()) {
    // Turned by -90 degrees: each line's baseline is a vertical line, the first one leftmost,
    // the block's right edge 8 px left of the tick labels.
    TextBlock b = axis_label_block(ylabel, f.ylabel_len > 0 ? f.ylabel_len : f.bottom - f.top);
    const double cy = 0.5 * (f.top + f.bottom);
    double x = f.left - 11 - tick_w - 8 - b.height();
    for (const std::string& l : b.lines) {
      svg.text(x + 0.8 * b.size, cy, l, b.size, "middle", "", "#222222", -90);
      x += line_height(b.size);
    }
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
  svg.reserve(TextBox{x + w / 2, y + h / 2, w / 2, h / 2, 0});
}

// ---- CSV ---------------------------------------------------------------------------------------

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_num(double v) {
  // std::to_chars without a precision gives the shortest text that parses back to exactly v.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

std::string csv_path(const std::string& svg_path) {
  const std::string ext = ".svg";
  if (svg_path.size() > ext.size() &&
      svg_path.compare(svg_path.size() - ext.size(), ext.size(), ext) == 0)
    return svg_path.substr(0, svg_path.size() - ext.size()) + ".csv";
  return svg_path + ".csv";
}

}  // namespace detail
}  // namespace mmgrad::plot
