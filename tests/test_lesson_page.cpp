// The lesson page (lessons/common/page.h): out/<lesson>/index.html holds the printed narrative in
// order with every figure inline where it was written, and out/index.html lists the lesson pages.
// First the page writer on its own, then real lessons: every figure they write is on their page.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "common/format.h"
#include "common/lesson.h"
#include "common/page.h"
#include "file_test_util.h"
#include "lesson_runner.h"
#include "mmgrad/core/error.h"
#include "mmgrad/core/file_util.h"

namespace fs = std::filesystem;
namespace page = mmgrad::lesson::page;
using mmgrad::write_file_atomic;
using mmgrad::testing::read_text;
using mmgrad::testing::TempDir;

namespace {

constexpr const char* kSvg =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"></svg>\n";

// Position of `needle` in `hay`, or npos (with the needle in the failure message).
size_t at(const std::string& hay, const std::string& needle) {
  const size_t p = hay.find(needle);
  CHECK_MESSAGE(p != std::string::npos, "missing from the page: ", needle);
  return p;
}

// The figures (.svg, .png) directly in folder `dir`.
std::set<std::string> figures_in(const fs::path& dir) {
  std::set<std::string> figs;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".svg" || ext == ".png"))
      figs.insert(e.path().filename().string());
  }
  return figs;
}

// Every src="..." of an <img> in `html`.
std::set<std::string> img_sources(const std::string& html) {
  std::set<std::string> srcs;
  static const std::regex img("<img src=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), img); it != std::sregex_iterator();
       ++it)
    srcs.insert((*it)[1]);
  return srcs;
}

// Runs lessons/<name> with `args` and --out `out` (lesson_runner's run_lesson picks the folder
// itself; the course index needs it to be <parent>/<lesson>).
int run_into(const std::string& name, const std::string& args, const std::string& out,
             std::string& output) {
  std::string cmd = "'";
  cmd += lesson_test::bin_dir() + "/lessons/" + name + "' " + args + " --out '" + out + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE_MESSAGE(p != nullptr, "cannot start ", cmd);
  std::array<char, 4096> buf;
  while (fgets(buf.data(), buf.size(), p)) output += buf.data();
  const int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

TEST_CASE("page: html_escape escapes the five characters HTML reads as markup") {
  CHECK(page::html_escape("a<b>&\"c\"'d'") == "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;");
  CHECK(page::html_escape("plain text, 93.4%") == "plain text, 93.4%");
  CHECK(page::html_escape("&amp;") ==
        "&amp;amp;");  // escaped again: the page shows what was printed
}

TEST_CASE("page: a progress line redrawn with carriage returns keeps only its final state") {
  CHECK(page::final_terminal_text("step 1/3\rstep 2/3\rstep 3/3 done\nnext\n") ==
        "step 3/3 done\nnext\n");
  // A shorter redraw leaves the end of the longer one, as on a terminal, unless it clears the
  // line (ESC [ K); colour codes vanish.
  CHECK(page::final_terminal_text("loss 1.2345\rloss 0.9\n") == "loss 0.9345\n");
  CHECK(page::final_terminal_text("loss 1.2345\rloss 0.9\033[K\n") == "loss 0.9\n");
  CHECK(page::final_terminal_text("\033[1;32mok\033[0m\ttab\a\n") == "ok\ttab\n");
}

TEST_CASE("page: text, headings and files appear in the order the lesson produced them") {
  TempDir tmp("page_order");
  const std::string out = (tmp.path / "07_demo").string();
  const std::string outside = (tmp.path / "elsewhere.svg").string();
  page::begin("07_demo", "a <demo> lesson", out, "seed 3, device cpu");
  mmgrad::lesson::print("intro line with <b>markup</b> & a 'quote'");
  write_file_atomic(out + "/first.svg", kSvg, "test");
  write_file_atomic(out + "/first.csv", "x,y\n1,2\n", "test");  // the figure's data
  write_file_atomic(outside, kSvg, "test");  // not in the output folder: not on the page
  mmgrad::lesson::section("1. Section <one>");
  mmgrad::lesson::print("{:<6}{:>6}\n{:<6}{:>6.2f}", "name", "value", "a", 1.5);  // a table
  write_file_atomic(out + "/model.ckpt", "weights", "test");
  write_file_atomic(out + "/traces/a.png", "png", "test");  // a subfolder: one line, counted
  write_file_atomic(out + "/traces/b.png", "png", "test");
  write_file_atomic(out + "/again.svg", kSvg, "test");
  mmgrad::lesson::print("between the two writes of again.svg");
  write_file_atomic(out + "/again.svg", kSvg, "test");  // shown once, where last written
  // A file written without the atomic writer (an external program): found at the next heading.
  std::ofstream(out + "/external.svg") << kSvg;
  mmgrad::lesson::section("2. Second");
  mmgrad::lesson::print_inline("progress 1\rprogress 2\rprogress done\n");

  // Nothing is written before the result line: a lesson stopped midway leaves no half page.
  CHECK_FALSE(fs::exists(out + "/index.html"));
  mmgrad::lesson::Result().add("acc", 0.5).print();
  page::end();

  const std::string html = read_text(out + "/index.html");
  REQUIRE(!html.empty());
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("<script") == std::string::npos);  // no JavaScript
  CHECK(html.find("http://") == std::string::npos);  // nothing fetched from the network
  CHECK(html.find("https://") == std::string::npos);
  // Escaped: the printed markup is text, not tags.
  CHECK(html.find("<b>markup") == std::string::npos);
  const size_t intro =
      at(html, "intro line with &lt;b&gt;markup&lt;/b&gt; &amp; a &#39;quote&#39;");
  const size_t first = at(html, "<img src=\"first.svg\"");
  const size_t csv = at(html, "<a href=\"first.csv\">");
  const size_t h1 = at(html, "<h2 id=\"s1\">1. Section &lt;one&gt;</h2>");
  const size_t table = at(html, "<pre>name   value\na       1.50</pre>");
  const size_t ckpt = at(html, "<a href=\"model.ckpt\">");
  const size_t traces = at(html, "<a href=\"traces/\">traces/</a> with 2 files");
  const size_t between = at(html, "between the two writes of again.svg");
  const size_t again = at(html, "<img src=\"again.svg\"");
  const size_t external = at(html, "<img src=\"external.svg\"");
  const size_t h2 = at(html, "<h2 id=\"s2\">2. Second</h2>");
  const size_t progress = at(html, "progress done");
  const size_t result = at(html, "id=\"result\"");
  CHECK(intro < first);
  CHECK(first < csv);  // the CSV rides in the figure's caption
  CHECK(csv < h1);
  CHECK(h1 < table);
  CHECK(table < ckpt);
  CHECK(ckpt < traces);
  CHECK(traces < between);
  CHECK(between < again);
  CHECK(again < external);
  CHECK(external < h2);
  CHECK(h2 < progress);
  CHECK(progress < result);
  CHECK(html.find("<img src=\"again.svg\"", again + 1) == std::string::npos);  // once
  CHECK(html.find("progress 1") == std::string::npos);
  CHECK(html.find("elsewhere.svg") == std::string::npos);
  CHECK(html.find("<td class=\"num\">0.5</td>") != std::string::npos);
  CHECK(html.find("a &lt;demo&gt; lesson") != std::string::npos);

  // result.txt: the result line first, then what the course index shows.
  const std::string res = read_text(out + "/result.txt");
  CHECK(res.rfind("result: acc=0.5 seconds=", 0) == 0);
  CHECK(res.find("\nsummary: a <demo> lesson\n") != std::string::npos);
  CHECK(res.find("\nsettings: seed 3, device cpu\n") != std::string::npos);

  // The folder is named after the lesson, so its parent got the course index.
  const std::string index = read_text(tmp.file("index.html"));
  CHECK(index.find("<a href=\"07_demo/index.html\">07_demo</a>") != std::string::npos);
  CHECK(index.find("acc=0.5") != std::string::npos);
  CHECK(index.find("a &lt;demo&gt; lesson") != std::string::npos);
  // The page's own files are not listed as the lesson's.
  CHECK(html.find("href=\"result.txt\"") == std::string::npos);
  CHECK(html.find("href=\"index.html\"") == std::string::npos);
}

TEST_CASE("page: the course index lists every lesson folder holding a page, in name order") {
  TempDir tmp("page_index");
  auto lesson_page = [&](const std::string& name, const std::string& result) {
    write_file_atomic(tmp.file(name + "/index.html"), "<html></html>", "test");
    write_file_atomic(tmp.file(name + "/result.txt"),
                      result + "\nsummary: about " + name + "\nsettings: seed 0\n", "test");
  };
  lesson_page("04_mini_clip", "result: zero_shot_acc=0.61 seconds=40.1");
  lesson_page("01_autograd_tour", "result: max_grad_err=6.8e-11 seconds=0.2");
  write_file_atomic(tmp.file("02_half_run/graph.svg"), kSvg, "test");  // no page: not listed
  write_file_atomic(tmp.file("03_no_result/index.html"), "<html></html>", "test");
  page::write_course_index(tmp.path.string());
  const std::string index = read_text(tmp.file("index.html"));
  const size_t l01 = at(index, "<a href=\"01_autograd_tour/index.html\">01_autograd_tour</a>");
  const size_t l04 = at(index, "<a href=\"04_mini_clip/index.html\">04_mini_clip</a>");
  CHECK(l01 < l04);
  CHECK(l01 < at(index, "max_grad_err=6.8e-11"));
  CHECK(l04 < at(index, "zero_shot_acc=0.61"));
  CHECK(index.find("about 04_mini_clip") != std::string::npos);
  CHECK(index.find("02_half_run") == std::string::npos);
  CHECK(index.find("03_no_result") == std::string::npos);

  TempDir empty("page_index_empty");
  CHECK(page::course_index_html(empty.path.string()).find("No lesson has finished") !=
        std::string::npos);
}

TEST_CASE("page: an output folder not named after the lesson gets its page but no course index") {
  TempDir tmp("page_other_out");
  const std::string out = tmp.file("my_run");
  page::begin("07_demo", "demo", out, "seed 0");
  write_file_atomic(out + "/f.svg", kSvg, "test");
  mmgrad::lesson::Result().add("x", 1.0).print();
  page::end();
  CHECK(read_text(out + "/index.html").find("<img src=\"f.svg\"") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.file("index.html")));
  // And with no page begun, printing and writing record nothing.
  write_file_atomic(out + "/late.svg", kSvg, "test");
  CHECK_FALSE(page::active());
  CHECK(read_text(out + "/index.html").find("late.svg") == std::string::npos);
}

TEST_CASE("page: unusual file names make working links") {
  TempDir tmp("page_names");
  const std::string out = tmp.file("07_demo");
  page::begin("07_demo", "demo", out, "seed 0");
  write_file_atomic(out + "/a b#1&\"x\".svg", kSvg, "test");
  mmgrad::lesson::Result().add("x", 1.0).print();
  page::end();
  const std::string html = read_text(out + "/index.html");
  CHECK(html.find("<img src=\"a%20b%231%26%22x%22.svg\" alt=\"a b#1&amp;&quot;x&quot;.svg\">") !=
        std::string::npos);
}

// The real thing: lessons 00 (figures through the plot library) and 01 (graph.svg drawn by the
// external `dot` program) in --quick mode. Every .svg and .png in each output folder must be an
// <img> on the lesson's page, every <img> must be a file there, and the course index beside them
// links both pages with their result numbers.
TEST_CASE("page: every figure lessons 00 and 01 write is on their page, and the index links them") {
  TempDir tmp("page_lessons");
  for (const std::string name : {"00_micrograd", "01_autograd_tour"}) {
    const fs::path out = tmp.path / name;
    std::string output;
    const int status = run_into(name, "--quick --threads 1", out.string(), output);
    INFO(output);
    REQUIRE(status == 0);
    const std::string html = read_text((out / "index.html").string());
    REQUIRE(!html.empty());
    const std::set<std::string> figs = figures_in(out);
    CHECK(!figs.empty());
    const std::set<std::string> srcs = img_sources(html);
    for (const std::string& f : figs)
      CHECK_MESSAGE(srcs.count(f) == 1, name, ": ", f, " is not on its page");
    for (const std::string& s : srcs)
      CHECK_MESSAGE(fs::exists(out / s), name, ": the page shows ", s, ", which is not there");
    // Each section of the run is a heading, and the result is there.
    CHECK(html.find("<h2 id=\"s1\">1. ") != std::string::npos);
    CHECK(html.find("id=\"result\"") != std::string::npos);
  }
  const std::string index = read_text(tmp.file("index.html"));
  CHECK(index.find("<a href=\"00_micrograd/index.html\">") != std::string::npos);
  CHECK(index.find("<a href=\"01_autograd_tour/index.html\">") != std::string::npos);
  CHECK(index.find("max_grad_err=") != std::string::npos);  // lesson 01's result numbers
}
