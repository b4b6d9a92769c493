// Figures without defects: every text of a chart is read back from the SVG written, measured
// with the same width table the layout uses (pd::text_box), and checked to lie inside the
// canvas and clear of every other text; plus the CSV written beside each figure, histograms with
// their zero marker, log x axes and panels.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "file_test_util.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/plot/figure.h"
#include "mmgrad/plot/svg.h"

using namespace mmgrad;
using namespace mmgrad::plot;
namespace pd = mmgrad::plot::detail;
using mmgrad::testing::read_text;
using mmgrad::testing::TempDir;

namespace {

// The value of attribute `name` inside one tag ("" when absent).
std::string attr(const std::string& tag, const std::string& name) {
  const size_t at = tag.find(" " + name + "=\"");
  if (at == std::string::npos) return "";
  const size_t start = at + name.size() + 3;
  return tag.substr(start, tag.find('"', start) - start);
}

std::string unescape(std::string s) {
  const std::pair<const char*, const char*> ents[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
  for (auto [from, to] : ents)
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + 1))
      s.replace(p, std::string(from).size(), to);
  return s;
}

struct Text {
  std::string s;
  pd::TextBox box;
};

// Every <text> element of a (non-nested) chart, with the box it covers.
std::vector<Text> texts_of(const std::string& svg) {
  std::vector<Text> out;
  for (size_t p = svg.find("<text "); p != std::string::npos; p = svg.find("<text ", p + 1)) {
    const size_t close = svg.find('>', p), end = svg.find("</text>", close);
    const std::string tag = svg.substr(p, close - p);
    const std::string s = unescape(svg.substr(close + 1, end - close - 1));
    double angle = 0;
    const std::string tr = attr(tag, "transform");
    if (!tr.empty()) angle = std::stod(tr.substr(tr.find('(') + 1));
    out.push_back({s, pd::text_box(std::stod(attr(tag, "x")), std::stod(attr(tag, "y")), s,
                                   std::stod(attr(tag, "font-size")), attr(tag, "text-anchor"),
                                   angle, attr(tag, "font-weight") == "bold")});
  }
  return out;
}

// Every text inside the canvas, and no two texts overlapping.
void check_texts(const std::string& svg) {
  const size_t root = svg.find("<svg ");
  const std::string tag = svg.substr(root, svg.find('>', root) - root);
  const double W = std::stod(attr(tag, "width")), H = std::stod(attr(tag, "height"));
  std::vector<Text> t = texts_of(svg);
  REQUIRE(!t.empty());
  for (const Text& a : t) {
    pd::Rect r = pd::bounds(a.box);
    INFO("text '", a.s, "' spans x ", r.x0, "..", r.x1, ", y ", r.y0, "..", r.y1, " on a ", W, "x",
         H, " canvas");
    CHECK(r.x0 >= -0.5);
    CHECK(r.x1 <= W + 0.5);
    CHECK(r.y0 >= -0.5);
    CHECK(r.y1 <= H + 0.5);
  }
  for (size_t i = 0; i < t.size(); ++i)
    for (size_t j = i + 1; j < t.size(); ++j) {
      INFO("'", t[i].s, "' and '", t[j].s, "'");
      CHECK_FALSE(pd::overlap(t[i].box, t[j].box, 0.0));
    }
}

const std::string kLong =
    "A title far longer than any canvas could hold on one line, with a great many words in it, "
    "about contrastive image-text embeddings, temperatures, batch sizes and what they mean";

}  // namespace

TEST_CASE("plot layout: the text measure and the box overlap test") {
  // The table: digits are 0.636 em (DejaVu Sans) >= 0.556 em (Helvetica); bold is wider.
  CHECK(pd::text_width("0000", 10) == doctest::Approx(25.44));
  CHECK(pd::text_width("Title", 16, true) > pd::text_width("Title", 16));
  CHECK(pd::text_width("\xc3\x97", 10) == doctest::Approx(10));  // one non-ASCII: an em
  auto a = pd::text_box(100, 100, "abcdef", 12, "middle");
  CHECK(pd::overlap(a, pd::text_box(110, 104, "abcdef", 12, "middle")));
  CHECK_FALSE(pd::overlap(a, pd::text_box(100, 120, "abcdef", 12, "middle")));
  // Two labels turned by 90 degrees, 20 px apart, do not touch; 8 px apart they do.
  auto v = [](double x) { return pd::text_box(x, 50, "a long label", 11, "end", -90); };
  CHECK_FALSE(pd::overlap(v(0), v(20)));
  CHECK(pd::overlap(v(0), v(8)));
  // fit_text: wrapped and/or smaller, each line within the width.
  pd::TextBlock b = pd::fit_text(kLong, 300, 16, 11, 2, true);
  CHECK(b.lines.size() >= 2);
  for (const std::string& l : b.lines) CHECK(pd::text_width(l, b.size, true) <= 300);
  pd::TextBlock w = pd::fit_text(std::string(80, 'W'), 100, 12, 9, 2);
  for (const std::string& l : w.lines) CHECK(pd::text_width(l, w.size) <= 100);
}

TEST_CASE("plot layout: a title longer than the canvas stays inside it, in every chart kind") {
  LinePlot lp(kLong, kLong, kLong);
  lp.add_series("a series", {1, 2, 3}, {3, 1, 2});
  check_texts(lp.to_svg());

  ScatterPlot sp(kLong, "PC 1", "PC 2");
  sp.add_points("points", {0, 1, 2}, {2, 0, 1});
  check_texts(sp.to_svg());

  BarChart bc(kLong, "class", kLong);
  bc.set_categories({"a", "b", "c"}).add_series("s", {0.1, 0.5, 0.9}).set_value_labels(true, 2);
  check_texts(bc.to_svg());

  Heatmap hm(kLong, std::vector<std::vector<double>>{{1, 2}, {3, 4}}, {"r0", "r1"}, {"c0", "c1"});
  hm.set_axis_labels("predicted", "true");
  check_texts(hm.to_svg());

  Histogram hg(kLong, "value", "count");
  hg.set_bins(-1, 1, 10).add_values("v", {-0.5, 0.1, 0.2});
  check_texts(hg.to_svg());
}

TEST_CASE("plot layout: 20 long bar labels with value labels: no two text boxes overlap") {
  std::vector<std::string> cats;
  std::vector<double> a, b, c;
  for (int i = 0; i < 20; ++i) {
    cats.push_back("category number " + std::to_string(i) + " with a long name");
    a.push_back(0.50 + 0.02 * i);
    b.push_back(0.55 + 0.015 * i);
    c.push_back(i % 2 ? 0.6 : 0.99);
  }
  BarChart bc("Accuracy per category", "", "accuracy");
  bc.set_categories(cats).add_series("first run", a).add_series("second run", b);
  bc.add_series("third run", c).set_value_labels(true, 2).set_ylim(0, 1);
  const std::string svg = bc.to_svg();
  check_texts(svg);
  // Every value is either printed or counted in the note that points to the CSV.
  size_t shown = 0;
  for (const Text& t : texts_of(svg))
    if (t.s.size() == 4 && t.s[0] == '0' && t.s[1] == '.') ++shown;
  if (shown < 60) CHECK(svg.find("value labels left out") != std::string::npos);
  CHECK(shown > 0);

  // And for fewer, shorter labels everything fits and nothing is left out.
  BarChart small("Two classes", "", "accuracy");
  small.set_categories({"cat", "dog"}).add_series("x", {0.25, 0.75}).set_value_labels(true, 2);
  const std::string s2 = small.to_svg();
  check_texts(s2);
  CHECK(s2.find(">0.25</text>") != std::string::npos);
  CHECK(s2.find("left out") == std::string::npos);
}

TEST_CASE("plot layout: tick and heatmap labels never overlap") {
  for (int n : {3, 10, 40}) {
    std::vector<std::vector<double>> m(n, std::vector<double>(n, 0.0));
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
      names.push_back("class name " + std::to_string(i));
      m[i][i] = i;
    }
    Heatmap h("Confusion", m, names, names);
    h.set_axis_labels("predicted", "true");
    check_texts(h.to_svg());
  }
  // Large x values on a narrow plot: thinned out rather than overlapping.
  LinePlot lp("steps", "step", "loss");
  lp.add_series("loss", {1000000, 1250000, 1500000, 1750000, 2000000}, {1, 2, 3, 4, 5});
  lp.set_size(200, 200);
  check_texts(lp.to_svg());
}

TEST_CASE("plot layout: every chart writes its data as CSV beside the figure") {
  TempDir dir("mmgrad_plot_csv");
  const std::string base = dir.path.string() + "/fig";
  LinePlot lp("t", "x", "y");
  lp.add_series("a, with comma", {1, 2, 3}, {0.1, 1e-5, NAN}).add_hline("chance", 0.25);
  lp.save(base + "_line.svg");
  CHECK(read_text(base + "_line.csv") ==
        "series,x,y\n\"a, with comma\",1,0.1\n\"a, with comma\",2,1e-05\n"
        "\"a, with comma\",3,nan\nchance,,0.25\n");

  BarChart bc("t");
  bc.set_categories({"cat", "dog"}).add_series("acc", {0.1 + 0.2, 2.0 / 3});
  bc.save(base + "_bar.svg");
  const std::string bar = read_text(base + "_bar.csv");
  CHECK(bar == "category,series,value\ncat,acc,0.30000000000000004\ndog,acc,0.6666666666666666\n");
  // Read back, the numbers are exactly the doubles given.
  CHECK(std::stod("0.6666666666666666") == 2.0 / 3);

  ScatterPlot sp("t");
  sp.add_points("p", {1, 2}, {3, 4});
  sp.save(base + "_scatter.svg");
  CHECK(read_text(base + "_scatter.csv") == "group,x,y\np,1,3\np,2,4\n");

  Heatmap hm("t", std::vector<std::vector<double>>{{1, 2}, {3, 4}}, {"r0", "r1"}, {"c0", "c1"});
  hm.save(base + "_heat.svg");
  CHECK(read_text(base + "_heat.csv") == "row,column,value\nr0,c0,1\nr0,c1,2\nr1,c0,3\nr1,c1,4\n");

  Histogram hg("t");
  hg.set_bins(-1, 1, 4).add_values("m", {-0.9, -0.1, 0.2, 0.3, 5.0});
  hg.save(base + "_hist.svg");
  CHECK(read_text(base + "_hist.csv") ==
        "series,bin_lo,bin_hi,count\nm,-1,-0.5,1\nm,-0.5,0,1\nm,0,0.5,2\nm,0.5,1,1\n");
  // The SVG is there too, and a name without .svg gets .csv added.
  CHECK(read_text(base + "_hist.svg").find("</svg>") != std::string::npos);
  CHECK(pd::csv_path("out/a.b/fig") == "out/a.b/fig.csv");
}

TEST_CASE("plot layout: a signed histogram is bars with a zero marker") {
  std::vector<double> margins;
  for (int i = 0; i < 200; ++i) margins.push_back(-0.3 + 0.6 * ((i * 37) % 200) / 200.0);
  Histogram h("Margins", "margin", "images");
  h.set_bins(-0.6, 0.6, 24).add_values("images", margins);
  const std::string svg = h.to_svg();
  check_texts(svg);
  CHECK(svg.find("<polyline") == std::string::npos);  // bars, not a line
  size_t bars = 0;
  for (double c : h.counts(0)) bars += c > 0;
  CHECK(bars == 12);
  size_t rects = 0;
  for (size_t p = svg.find("stroke=\"white\""); p != std::string::npos;
       p = svg.find("stroke=\"white\"", p + 1))
    ++rects;
  CHECK(rects == bars);
  // The zero marker: a vertical line in the middle of the x range [-0.6, 0.6].
  const size_t z = svg.find("class=\"zero-marker\"");
  REQUIRE(z != std::string::npos);
  const std::string line = svg.substr(svg.rfind("<line", z), z - svg.rfind("<line", z));
  CHECK(attr(line, "x1") == attr(line, "x2"));

  Histogram pos("Counts", "value");
  pos.set_bins(0, 1, 5).add_values("v", {0.1, 0.2});
  CHECK(pos.to_svg().find("zero-marker") == std::string::npos);
  CHECK_THROWS_WITH_AS(Histogram("x").add_values("v", {1.0}), doctest::Contains("set_bins"), Error);
}

TEST_CASE("plot layout: a log x axis gives k = 1..10 as much room as k = 10..100") {
  LinePlot p("Recall@k", "k", "recall");
  p.add_series("r", {1, 2, 3, 5, 10, 20, 50, 100}, {0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9});
  p.set_markers().set_log_x();
  const std::string svg = p.to_svg();
  std::vector<double> cx;
  for (size_t q = svg.find("<circle"); q != std::string::npos; q = svg.find("<circle", q + 1))
    cx.push_back(std::stod(attr(svg.substr(q, svg.find('>', q) - q), "cx")));
  REQUIRE(cx.size() == 8);
  CHECK(cx[4] - cx[0] == doctest::Approx(cx[7] - cx[4]).epsilon(0.01));
  check_texts(svg);
}

TEST_CASE("plot layout: panels keep quantities of different units on their own axes") {
  LinePlot loss("Training loss", "epoch", "loss");
  loss.add_series("early", {1, 2}, {1.0, 0.5});
  LinePlot acc("Held-out accuracy", "epoch", "accuracy");
  acc.add_series("early", {1, 2}, {0.5, 0.75});
  Panels p("Training", 2);
  p.add(loss).add(acc);
  const std::string svg = p.to_svg();
  CHECK(svg.find("id=\"plot-area-p1\"") != std::string::npos);
  CHECK(svg.find("id=\"plot-area-p2\"") != std::string::npos);
  CHECK(svg.find("url(#plot-area)") == std::string::npos);
  CHECK(p.to_csv() ==
        "panel,series,x,y\n1,early,1,1\n1,early,2,0.5\n2,early,1,0.5\n"
        "2,early,2,0.75\n");
  BarChart b("b");
  b.set_categories({"x"}).add_series("s", {1.0});
  p.add(b);
  CHECK(p.to_csv().find("panel,series,x,y,category,value\n") == 0);
  CHECK_THROWS_WITH_AS(Panels("none").to_svg(), doctest::Contains("no panels"), Error);
}
