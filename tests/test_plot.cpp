// Figures: every chart kind is rendered and parsed by a small XML well-formedness checker
// (written here: no XML library is allowed), with escaping, skipped non-finite values, tick
// choices and bad input checked.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "file_test_util.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/plot/figure.h"
#include "mmgrad/plot/svg.h"

using namespace mmgrad;
using namespace mmgrad::plot;
namespace fs = std::filesystem;
using mmgrad::testing::read_text;
using mmgrad::testing::TempDir;

namespace {

// ---- a small XML 1.0 well-formedness checker ---------------------------------------------------
// Checks: one root element; start/end tags balanced and properly nested; attribute values
// quoted, without '<', no attribute twice in a tag; every '&' starts a valid entity (the five
// predefined ones or a character reference); comments and processing instructions closed; no
// text outside the root; valid UTF-8 without forbidden control characters.
struct XmlResult {
  bool ok = true;
  std::string error;
  size_t elements = 0;
};

bool name_start(unsigned char c) { return std::isalpha(c) || c == '_' || c == ':' || c >= 0x80; }
bool name_char(unsigned char c) { return name_start(c) || std::isdigit(c) || c == '-' || c == '.'; }

bool valid_utf8(const std::string& s, std::string& why) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size() ||
        (c < 0x80 && c < 0x20 && c != '\t' && c != '\n' && c != '\r') || (len == 2 && c < 0xC2)) {
      why = "bad byte " + std::to_string(c) + " at " + std::to_string(i);
      return false;
    }
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        why = "bad UTF-8 continuation at " + std::to_string(i + k);
        return false;
      }
    i += len;
  }
  return true;
}

XmlResult check_xml(const std::string& s) {
  XmlResult r;
  auto fail = [&](const std::string& why, size_t at) {
    r.ok = false;
    r.error = why + " at offset " + std::to_string(at);
    return r;
  };
  std::string why;
  if (!valid_utf8(s, why)) return fail(why, 0);
  size_t i = 0;
  const size_t n = s.size();
  std::vector<std::string> stack;
  bool root_done = false;

  auto check_entity = [&](size_t& p) -> bool {  // s[p] == '&'
    size_t semi = s.find(';', p);
    if (semi == std::string::npos || semi - p > 10) return false;
    std::string ent = s.substr(p + 1, semi - p - 1);
    bool ok = ent == "amp" || ent == "lt" || ent == "gt" || ent == "quot" || ent == "apos";
    if (!ok && ent.size() >= 2 && ent[0] == '#') {
      bool hex = ent[1] == 'x';
      std::string digits = ent.substr(hex ? 2 : 1);
      ok = !digits.empty();
      for (char c : digits)
        ok = ok && (hex ? std::isxdigit(static_cast<unsigned char>(c))
                        : std::isdigit(static_cast<unsigned char>(c)));
    }
    p = semi + 1;
    return ok;
  };
  auto read_name = [&](size_t& p) {
    size_t start = p;
    if (p >= n || !name_start(s[p])) return std::string();
    while (p < n && name_char(s[p])) ++p;
    return s.substr(start, p - start);
  };
  auto skip_ws = [&](size_t& p) {
    size_t start = p;
    while (p < n && std::isspace(static_cast<unsigned char>(s[p]))) ++p;
    return p > start;
  };

  while (i < n) {
    if (s[i] != '<') {
      if (s[i] == '&') {
        size_t p = i;
        if (!check_entity(p)) return fail("invalid entity", i);
        if (stack.empty()) return fail("text outside the root element", i);
        i = p;
        continue;
      }
      if (stack.empty() && !std::isspace(static_cast<unsigned char>(s[i])))
        return fail("text outside the root element", i);
      ++i;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      size_t e = s.find("-->", i + 4);
      if (e == std::string::npos) return fail("unclosed comment", i);
      if (s.substr(i + 4, e - i - 4).find("--") != std::string::npos)
        return fail("'--' in comment", i);
      i = e + 3;
      continue;
    }
    if (s.compare(i, 2, "<?") == 0) {
      if (i != 0 && s.compare(i, 5, "<?xml") == 0) return fail("XML declaration not at start", i);
      size_t e = s.find("?>", i + 2);
      if (e == std::string::npos) return fail("unclosed processing instruction", i);
      i = e + 2;
      continue;
    }
    if (s.compare(i, 2, "<!") == 0) return fail("DOCTYPE/CDATA not expected", i);
    if (s.compare(i, 2, "</") == 0) {
      size_t p = i + 2;
      std::string name = read_name(p);
      skip_ws(p);
      if (name.empty() || p >= n || s[p] != '>') return fail("malformed end tag", i);
      if (stack.empty() || stack.back() != name)
        return fail("end tag </" + name + "> does not match " +
                        (stack.empty() ? std::string("nothing") : "<" + stack.back() + ">"),
                    i);
      stack.pop_back();
      if (stack.empty()) root_done = true;
      i = p + 1;
      continue;
    }
    // Start tag.
    if (root_done) return fail("a second root element", i);
    size_t p = i + 1;
    std::string name = read_name(p);
    if (name.empty()) return fail("malformed start tag", i);
    std::set<std::string> attrs;
    bool closed = false, self = false;
    while (p < n) {
      bool ws = skip_ws(p);
      if (p < n && s[p] == '>') {
        closed = true;
        ++p;
        break;
      }
      if (s.compare(p, 2, "/>") == 0) {
        closed = self = true;
        p += 2;
        break;
      }
      if (!ws) return fail("missing space before attribute in <" + name + ">", p);
      std::string an = read_name(p);
      if (an.empty()) return fail("malformed attribute in <" + name + ">", p);
      if (!attrs.insert(an).second) return fail("duplicate attribute " + an, p);
      skip_ws(p);
      if (p >= n || s[p] != '=') return fail("attribute " + an + " without '='", p);
      ++p;
      skip_ws(p);
      if (p >= n || (s[p] != '"' && s[p] != '\'')) return fail("unquoted attribute " + an, p);
      char q = s[p++];
      while (p < n && s[p] != q) {
        if (s[p] == '<') return fail("'<' in attribute " + an, p);
        if (s[p] == '&') {
          size_t e = p;
          if (!check_entity(e)) return fail("invalid entity in attribute " + an, p);
          p = e;
          continue;
        }
        ++p;
      }
      if (p >= n) return fail("unterminated attribute " + an, p);
      ++p;
    }
    if (!closed) return fail("unterminated start tag <" + name + ">", i);
    ++r.elements;
    if (self) {
      if (stack.empty()) root_done = true;
    } else {
      stack.push_back(name);
    }
    i = p;
  }
  if (!stack.empty()) return fail("unclosed element <" + stack.back() + ">", n);
  if (!root_done) return fail("no root element", n);
  return r;
}

void check_well_formed(const std::string& svg) {
  XmlResult r = check_xml(svg);
  INFO(r.error);
  CHECK(r.ok);
  CHECK(svg.find("<svg") != std::string::npos);
}

size_t count(const std::string& s, const std::string& what) {
  size_t c = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++c;
  return c;
}

}  // namespace

TEST_CASE("plot: the XML checker itself accepts good and rejects broken documents") {
  CHECK(check_xml("<?xml version=\"1.0\"?>\n<a x=\"1\" y='2'><b/><!-- c --><c>t &amp; &#38; "
                  "&#x26;</c></a>\n")
            .ok);
  const char* bad[] = {
      "<a><b></a></b>",           // crossed tags
      "<a><b></b>",               // unclosed
      "<a x=1></a>",              // unquoted attribute
      "<a x=\"1\" x=\"2\"></a>",  // duplicate attribute
      "<a x=\"<\"></a>",          // '<' in an attribute
      "<a>fish & chips</a>",      // bare '&'
      "<a>&nbsp;</a>",            // undefined entity
      "<a></a><b></b>",           // two roots
      "text<a></a>",              // text outside the root
      "<a x=\"1\"y=\"2\"></a>",   // attributes run together
      "<a><!-- open </a>",        // unclosed comment
      "<a>\x01</a>",              // control character
      "<a>\xff</a>",              // not UTF-8
      "",                         // nothing
  };
  for (const char* b : bad) {
    CAPTURE(b);
    CHECK_FALSE(check_xml(b).ok);
  }
}

TEST_CASE("plot: line plot with several series, legend, log-y, markers and gaps") {
  TempDir d("plot");
  std::vector<double> steps, train, val;
  for (int i = 0; i < 50; ++i) {
    steps.push_back(i * 10);
    train.push_back(2.3 * std::exp(-i / 15.0) + 0.05);
    val.push_back(i == 20 ? NAN : 2.4 * std::exp(-i / 18.0) + 0.1);  // a gap at step 200
  }
  LinePlot p("Training loss <CLIP> & friends", "step", "loss");
  p.add_series("train", steps, train).add_series("val \"held-out\"", steps, val, "", true);
  p.add_hline("chance: log(32)", std::log(32.0));
  std::string svg = p.to_svg();
  check_well_formed(svg);
  CHECK(svg.find("Training loss &lt;CLIP&gt; &amp; friends") != std::string::npos);
  CHECK(svg.find("val &quot;held-out&quot;") != std::string::npos);
  CHECK(count(svg, "<polyline") == 3);  // train, and val split in two by the NaN
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
  // Round tick labels: the x axis over [0, 490] ends at 500.
  CHECK(svg.find(">500</text>") != std::string::npos);

  p.save(d.file("out/03/loss.svg"));  // creates the folders
  CHECK(read_text(d.file("out/03/loss.svg")) == svg);

  LinePlot lg("log", "step", "loss");
  lg.add_series("loss", {1.0, 0.1, 0.0, -1.0, 0.001}).set_log_y().set_markers();
  std::string s2 = lg.to_svg();
  check_well_formed(s2);
  CHECK(count(s2, "<circle") == 3);  // the zero and negative values are skipped on a log axis
  CHECK(s2.find(">0.001</text>") != std::string::npos);
  CHECK(s2.find(">1</text>") != std::string::npos);

  // recall@k-style: few points, fixed limits.
  LinePlot rk("Recall@k", "k", "recall");
  rk.add_series("image->text", {1, 5, 10}, {0.42, 0.81, 0.93}).set_ylim(0, 1).set_markers();
  check_well_formed(rk.to_svg());
  // An empty plot is still a valid document.
  check_well_formed(LinePlot("empty").to_svg());
}

TEST_CASE("plot: text is escaped and invalid UTF-8 / control bytes are replaced") {
  using mmgrad::plot::detail::xml_escape;
  CHECK(xml_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&apos;");
  CHECK(xml_escape("caf\xc3\xa9") == "caf\xc3\xa9");    // valid UTF-8 kept
  CHECK(xml_escape("\xe2\x86\x92") == "\xe2\x86\x92");  // an arrow
  CHECK(xml_escape("bad\xff\xc3") == "bad??");
  CHECK(xml_escape("\xed\xa0\x80") == "???");  // a UTF-16 surrogate
  CHECK(xml_escape("\xc0\xaf") == "??");       // overlong '/'
  CHECK(xml_escape("tab\tbell\x07") == "tab\tbell?");
  LinePlot p("\xff\xfe title \x01", "x \xc3", "y");
  p.add_series("s\xe9ries", {1.0, 2.0});
  check_well_formed(p.to_svg());
}

TEST_CASE("plot: scatter plot with per-class colours, two marker groups and a legend") {
  Generator gen(1);
  Tensor img = Tensor::randn({30, 2}, kFloat64, &gen);
  Tensor txt = Tensor::randn({30, 2}, kFloat32, &gen);
  std::vector<int64_t> lv;
  for (int i = 0; i < 30; ++i) lv.push_back(i % 5);
  Tensor labels = Tensor::from_vector(lv, {30});
  std::vector<std::string> names = {"Red", "Green", "Blue", "Yellow", "Magenta"};
  std::vector<std::string> colors = {"#e74c3c", "#2ecc71", "#3498db", "#f1c40f", "#9b59b6"};
  ScatterPlot s("Learned embedding space", "PC 1", "PC 2");
  s.add_classes(img, labels, names, Marker::Circle, "img", colors);
  s.add_classes(txt, labels, names, Marker::Square, "txt", colors);
  s.add_legend_entry("image embeddings", "#888888", Marker::Circle);
  s.add_points("origin", {0.0}, {0.0}, Marker::Cross, "black");
  std::string svg = s.to_svg();
  check_well_formed(svg);
  // 30 image points + 5 class legend markers + 1 extra legend marker.
  CHECK(count(svg, "<circle") == 30 + 5 + 1);
  CHECK(count(svg, "<rect x=") >= 30 + 5);  // squares (plus frame and legend boxes)
  CHECK(svg.find("Magenta (txt)") != std::string::npos);
  CHECK(svg.find("#9b59b6") != std::string::npos);
  // Every marker kind renders; non-finite points are skipped.
  ScatterPlot all("markers");
  double k = 0;
  for (Marker m : {Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond, Marker::Cross,
                   Marker::Plus}) {
    std::string name = "marker ";
    name += std::to_string(static_cast<int>(k));
    all.add_points(name, {k, NAN}, {k, 1.0}, m);
    k += 1;
  }
  check_well_formed(all.to_svg());
  // Many classes make the figure taller instead of overflowing the legend.
  ScatterPlot many("many");
  std::vector<std::string> cls;
  std::vector<int64_t> lab;
  std::vector<double> xs, ys;
  for (int c = 0; c < 40; ++c) {
    cls.push_back("class ");
    cls.back() += std::to_string(c);
    lab.push_back(c);
    xs.push_back(c);
    ys.push_back(-c);
  }
  many.add_classes(xs, ys, lab, cls);
  std::string ms = many.to_svg();
  check_well_formed(ms);
  // The figure grows to hold the 40-entry legend (18 px a row).
  const size_t hat = ms.find(" height=\"");
  REQUIRE(hat != std::string::npos);
  CHECK(std::stoi(ms.substr(hat + 9)) >= 40 + 18 * 40 + 20);

  CHECK_THROWS_WITH_AS(s.add_classes({1.0}, {1.0, 2.0}, {0}, names),
                       doctest::Contains("add_classes"), Error);
  CHECK_THROWS_WITH_AS(s.add_classes({1.0}, {1.0}, {7}, names), doctest::Contains("outside [0, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(s.add_classes(Tensor::zeros({3}), labels, names),
                       doctest::Contains("[N, 2]"), Error);
  CHECK_THROWS_WITH_AS(s.add_points("p", {1.0}, {}), doctest::Contains("add_points"), Error);
}

TEST_CASE("plot: heatmaps for confusion (integers) and similarity (floats) matrices") {
  std::vector<std::string> names = {"T-shirt/top", "Trouser", "<Pullover>", "Dress"};
  Tensor cm = Tensor::from_vector(
      std::vector<int64_t>{50, 2, 3, 0, 1, 60, 0, 4, 7, 0, 41, 2, 0, 3, 1, 55}, {4, 4});
  Heatmap h("Confusion matrix", cm, names, names);
  h.set_axis_labels("predicted", "true");
  h.set_colormap(Colormap::Blues);
  std::string svg = h.to_svg();
  check_well_formed(svg);
  CHECK(svg.find(">60</text>") != std::string::npos);  // integer counts without decimals
  CHECK(svg.find("&lt;Pullover&gt;") != std::string::npos);
  CHECK(svg.find("linearGradient") != std::string::npos);  // the colour bar
  // Long column labels: set smaller or turned, but never overlapping (checked in
  // test_plot_layout.cpp for every text of a chart).
  // The largest count gets the dark end of the colour scale, with white text on it.
  CHECK(svg.find("fill=\"#08306b\"") != std::string::npos);

  // Similarity in [-1, 1] with a diverging scale and 2 decimals.
  Heatmap sim("Cosine similarity",
              std::vector<std::vector<double>>{{1.0, -0.25, 0.5}, {-0.25, 1.0, 0.126}});
  sim.set_colormap(Colormap::RedBlue).set_range(-1, 1);
  std::string s2 = sim.to_svg();
  check_well_formed(s2);
  CHECK(s2.find(">-0.25</text>") != std::string::npos);
  CHECK(s2.find(">0.13</text>") != std::string::npos);  // 0.126 -> 2 decimals
  CHECK(s2.find(">1.00</text>") != std::string::npos);

  // A large matrix: cells too small for numbers, no index labels beyond 40 rows.
  Generator gen(2);
  Heatmap big("64 x 64", Tensor::rand({64, 64}, kFloat32, &gen));
  std::string s3 = big.to_svg();
  check_well_formed(s3);
  CHECK(count(s3, "<text") < 20);
  // Annotation forced on and off; NaN cells are grey and unlabelled.
  Heatmap nan("with a NaN", std::vector<std::vector<double>>{{1.0, NAN}, {2.0, 3.0}});
  std::string s4 = nan.set_annotate(1).to_svg();
  check_well_formed(s4);
  CHECK(s4.find("#dddddd") != std::string::npos);
  CHECK(s4.find(">nan<") == std::string::npos);
  CHECK(count(Heatmap("off", cm).set_annotate(0).to_svg(), ">55<") == 0);  // 55: not a bar tick
  CHECK(count(Heatmap("on", cm).to_svg(), ">55<") == 1);

  CHECK_THROWS_WITH_AS(Heatmap("x", cm, {"a"}), doctest::Contains("1 row labels for 4 rows"),
                       Error);
  CHECK_THROWS_WITH_AS(Heatmap("x", std::vector<std::vector<double>>{{1, 2}, {3}}),
                       doctest::Contains("row 1 has 1 values"), Error);
  CHECK_THROWS_WITH_AS(Heatmap("x", Tensor::zeros({3})), doctest::Contains("2-D"), Error);
  CHECK_THROWS_WITH_AS(Heatmap("x", Tensor::zeros({600, 2})), doctest::Contains("512"), Error);
  CHECK_THROWS_WITH_AS(sim.set_range(1, 1), doctest::Contains("vmin < vmax"), Error);
}

TEST_CASE("plot: grouped bar chart") {
  std::vector<std::string> cats = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  std::vector<double> a, b;
  for (int i = 0; i < 10; ++i) {
    a.push_back(0.5 + 0.04 * i);
    b.push_back(i == 6 ? NAN : 0.6 + 0.03 * i);
  }
  BarChart bc("Per-class accuracy", "class", "accuracy");
  bc.set_categories(cats).add_series("MLP", a).add_series("CNN", b).set_value_labels(true, 2);
  std::string svg = bc.to_svg();
  check_well_formed(svg);
  CHECK(svg.find("Ankle boot") != std::string::npos);
  CHECK(svg.find(">0.86</text>") != std::string::npos);  // 0.5 + 0.36 above the last MLP bar
  CHECK(svg.find("rotate(-") != std::string::npos);      // long names turned
  CHECK(svg.find(">CNN</text>") != std::string::npos);   // a legend for two series

  // Negative values draw below a zero line.
  BarChart neg("delta");
  neg.set_categories({"a", "b"}).add_series("d", {-1.5, 2.0});
  std::string s2 = neg.to_svg();
  check_well_formed(s2);
  CHECK(s2.find(">-1.5</text>") != std::string::npos);  // ticks every 0.5 from -1.5 to 2

  BarChart empty("e");
  CHECK_THROWS_WITH_AS(empty.to_svg(), doctest::Contains("no categories"), Error);
  CHECK_THROWS_WITH_AS(empty.add_series("s", {1.0}), doctest::Contains("set_categories"), Error);
  CHECK_THROWS_WITH_AS(bc.add_series("s", {1.0}), doctest::Contains("1 values for 10"), Error);
}

TEST_CASE("plot: nice ticks, tick labels and colours") {
  using namespace mmgrad::plot::detail;
  CHECK(nice_ticks(0, 1) == std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1});
  // The step is the 1-2-5 number nearest (range / 5): 0.148 -> 0.1, 246.8 -> 200.
  std::vector<double> t = nice_ticks(0.13, 0.87);
  CHECK(t.front() == doctest::Approx(0.1));
  CHECK(t.back() == doctest::Approx(0.9));
  for (size_t i = 1; i < t.size(); ++i) CHECK(t[i] - t[i - 1] == doctest::Approx(0.1));
  std::vector<double> big = nice_ticks(0, 1234);
  CHECK(big.back() == 1400);
  CHECK(big[1] - big[0] == 200);
  CHECK(nice_ticks(0, 490).back() == 500);
  std::vector<double> flat = nice_ticks(5, 5);  // a constant still gets a range
  CHECK(flat.front() < 5);
  CHECK(flat.back() > 5);
  CHECK(nice_ticks(-3, -1).front() == -3);
  CHECK(log_ticks(0.01, 50) == std::vector<double>{0.01, 0.1, 1, 10, 100});
  CHECK(log_ticks(1, 50).size() == 7);  // 1 2 5 10 20 50 100
  CHECK(tick_label(0.25, 0.25) == "0.25");
  CHECK(tick_label(0.6000000000000001, 0.2) == "0.6");
  CHECK(tick_label(1400, 200) == "1400");
  CHECK(tick_label(0, 0.1) == "0");
  CHECK(tick_label(2e-6, 1e-6) == "2e-06");
  CHECK(num(NAN) == "0");
  CHECK(num(1e300) == "1000000");
  CHECK(num(-0.001) == "0");
  CHECK(colormap_color(Colormap::Viridis, 0) == "#440154");
  CHECK(colormap_color(Colormap::Viridis, 1) == "#fde725");
  CHECK(colormap_color(Colormap::Blues, 2.0) == "#08306b");  // clamped
  CHECK(dark_color("#08306b"));
  CHECK_FALSE(dark_color("#fde725"));
  CHECK(palette(0) == palette(10));
}
