#include "common/page.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "common/format.h"
#include "mmgrad/core/error.h"
#include "mmgrad/core/file_util.h"

namespace mmgrad::lesson::page {
namespace fs = std::filesystem;

namespace {

// The files the page itself writes: never recorded as the lesson's own.
constexpr const char* kPageFile = "index.html";
constexpr const char* kResultFile = "result.txt";

// One thing in the narrative, in the order it happened.
struct Item {
  enum class Kind { Text, Heading, File } kind;
  std::string text;  // Text: what was printed; Heading: the title; File: path relative to out
};

struct Recorder {
  std::mutex mutex;
  bool on = false;
  std::string lesson, summary, settings, out_text;
  fs::path out;  // absolute, normalised
  std::vector<Item> items;
  // The last-write time of each top-level file as last seen: a file whose time changed since was
  // written by the lesson (the scan that finds files written without the observer).
  std::map<std::string, fs::file_time_type> seen;
};

Recorder& recorder() {
  static Recorder r;
  return r;
}

fs::path absolute_normal(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return (ec ? p : a).lexically_normal();
}

// `path` relative to the output folder, or "" when it is not inside it.
std::string relative_to_out(const Recorder& r, const std::string& path) {
  fs::path rel = absolute_normal(path).lexically_relative(r.out);
  const std::string s = rel.generic_string();
  if (s.empty() || s == "." || s.rfind("..", 0) == 0) return "";
  return s;
}

bool is_page_file(const std::string& rel) { return rel == kPageFile || rel == kResultFile; }

// Adds a File item for `rel`; an earlier one for the same file is dropped (the page shows a file
// once, where it was last written). Caller holds the mutex.
void add_file(Recorder& r, const std::string& rel) {
  if (is_page_file(rel)) return;
  r.items.erase(
      std::remove_if(r.items.begin(), r.items.end(),
                     [&](const Item& it) { return it.kind == Item::Kind::File && it.text == rel; }),
      r.items.end());
  r.items.push_back({Item::Kind::File, rel});
  if (rel.find('/') == std::string::npos) {
    std::error_code ec;
    auto t = fs::last_write_time(r.out / rel, ec);
    if (!ec) r.seen[rel] = t;
  }
}

// An atomic writer's temporary ("<name>.tmp.<k>" or "<name>.tmp.<pid>.<n>"): not a result.
bool is_temporary(const std::string& name) { return name.find(".tmp.") != std::string::npos; }

// Top-level files of the output folder with their last-write times.
std::map<std::string, fs::file_time_type> list_top_level(const fs::path& out) {
  std::map<std::string, fs::file_time_type> files;
  std::error_code ec;
  fs::directory_iterator it(out, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    if (!it->is_regular_file(e2)) continue;
    const std::string name = it->path().filename().string();
    if (is_page_file(name) || is_temporary(name)) continue;
    auto t = it->last_write_time(e2);
    if (!e2) files[name] = t;
  }
  return files;
}

// Records the top-level files written since the last look without passing the observer.
void scan(Recorder& r) {
  for (const auto& [name, t] : list_top_level(r.out)) {
    auto it = r.seen.find(name);
    if (it == r.seen.end() || it->second != t) add_file(r, name);
  }
}

// ---- text to HTML
// ---------------------------------------------------------------------------------

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::string cur;
  for (char c : s) {
    if (c == '\n') {
      lines.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

// Aligned text (a table, a tensor, code) keeps its spaces in a monospace block: a line that
// starts with a space, has two spaces in a row or a tab, or starts like a printed tensor.
bool is_aligned(const std::string& line) {
  if (line.empty()) return false;
  if (line[0] == ' ' || line.find('\t') != std::string::npos) return true;
  if (line.find("  ") != std::string::npos) return true;
  return line.rfind("tensor(", 0) == 0;
}

// Printed text as paragraphs (split at blank lines): a paragraph with an aligned line is a <pre>
// block, any other keeps its line breaks in proportional type.
void text_html(std::ostringstream& o, const std::string& raw) {
  const std::vector<std::string> lines = split_lines(final_terminal_text(raw));
  size_t i = 0;
  while (i < lines.size()) {
    if (lines[i].find_first_not_of(' ') == std::string::npos) {
      ++i;
      continue;
    }
    size_t j = i;
    bool aligned = false;
    for (; j < lines.size() && lines[j].find_first_not_of(' ') != std::string::npos; ++j)
      aligned = aligned || is_aligned(lines[j]);
    if (aligned) {
      o << "<pre>";
      for (size_t k = i; k < j; ++k) o << html_escape(lines[k]) << (k + 1 < j ? "\n" : "");
      o << "</pre>\n";
    } else {
      o << "<p>";
      for (size_t k = i; k < j; ++k) o << html_escape(lines[k]) << (k + 1 < j ? "<br>\n" : "");
      o << "</p>\n";
    }
    i = j;
  }
}

// A path for href/src: every byte outside the unreserved set and '/' percent-encoded, so any
// file name works as a relative URL (a space, '#', '?', '%', non-ASCII).
std::string url_path(const std::string& rel) {
  static const char* hex = "0123456789ABCDEF";
  std::string u;
  for (unsigned char c : rel) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      u += static_cast<char>(c);
    } else {
      u += '%';
      u += hex[c >> 4];
      u += hex[c & 15];
    }
  }
  return u;
}

std::string link(const std::string& rel, const std::string& label) {
  return cat_str("<a href=\"", url_path(rel), "\">", html_escape(label), "</a>");
}

std::string lower_extension(const std::string& name) {
  std::string e = fs::path(name).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

bool is_figure(const std::string& rel) {
  if (rel.find('/') != std::string::npos) return false;
  const std::string e = lower_extension(rel);
  return e == ".svg" || e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".gif";
}

std::string human_size(uintmax_t bytes) {
  if (bytes < 1024) return format("{} B", static_cast<int64_t>(bytes));
  if (bytes < 1024 * 1024) return format("{:.1f} KB", static_cast<double>(bytes) / 1024.0);
  return format("{:.1f} MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

// The files that belong to figure `fig`: top-level files named "<fig's stem>.<anything>" (its
// CSV data, the graph.dot a graph.svg was drawn from, an image grid's .png.txt labels).
bool belongs_to(const std::string& file, const std::string& fig) {
  if (file == fig || file.find('/') != std::string::npos || is_figure(file)) return false;
  const std::string stem = fs::path(fig).stem().string() + ".";
  return file.rfind(stem, 0) == 0;
}

std::string local_time_text() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// "result: a=1 b=2" -> {(a, 1), (b, 2)}.
std::vector<std::pair<std::string, std::string>> result_items(const std::string& line) {
  std::vector<std::pair<std::string, std::string>> items;
  std::istringstream in(line.rfind("result:", 0) == 0 ? line.substr(7) : line);
  std::string w;
  while (in >> w) {
    const size_t eq = w.find('=');
    if (eq == std::string::npos) continue;
    items.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  return items;
}

// The stylesheet of both pages: readable type, monospace blocks that scroll sideways instead of
// wrapping (wrapping would break a table's columns), figures no wider than the page.
constexpr const char* kCss = R"(
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
         line-height: 1.5; color: #1f2328; background: #fff; margin: 0; }
  .page { max-width: 62rem; margin: 0 auto; padding: 1.5rem 1.5rem 4rem; }
  h1 { font-size: 1.8rem; margin: 0.2rem 0; }
  h2 { font-size: 1.3rem; margin: 2.2rem 0 0.8rem; padding-bottom: 0.3rem;
       border-bottom: 1px solid #d0d7de; }
  .summary { font-size: 1.1rem; color: #333; margin: 0.2rem 0; }
  .meta, .files, figcaption, footer { color: #57606a; font-size: 0.9rem; }
  nav { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
        padding: 0.6rem 1rem; margin: 1rem 0 1.5rem; }
  nav ul { margin: 0.3rem 0; padding-left: 0.2rem; list-style: none; }
  p { margin: 0.6rem 0; }
  pre, code, .result-line { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; }
  pre { background: #f6f8fa; border: 1px solid #eaeef2; border-radius: 6px; padding: 0.6rem 0.8rem;
        font-size: 0.82rem; line-height: 1.35; overflow-x: auto; white-space: pre; }
  figure { margin: 1rem 0 1.4rem; }
  figure img { display: block; max-width: 100%; height: auto; border: 1px solid #d0d7de;
               border-radius: 4px; background: #fff; }
  figcaption { margin-top: 0.3rem; }
  a { color: #0969da; }
  table { border-collapse: collapse; margin: 0.5rem 0; }
  th, td { text-align: left; padding: 0.35rem 0.8rem; border-bottom: 1px solid #eaeef2;
           vertical-align: top; }
  th { background: #f6f8fa; }
  td.meta { min-width: 10rem; }
  td.num { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; }
  .result { background: #f0f7ff; border: 1px solid #b6d4fe; border-radius: 6px;
            padding: 0.4rem 1rem 0.8rem; margin-top: 2rem; }
  .result h2 { border: none; margin-top: 0.4rem; }
  .result-line { font-size: 0.8rem; color: #57606a; overflow-wrap: anywhere; }
  code.kv { display: inline-block; background: #f6f8fa; border: 1px solid #eaeef2;
            border-radius: 4px; padding: 0 0.35rem; margin: 0.1rem 0.2rem 0.1rem 0; font-size: 0.85rem; }
  footer { margin-top: 3rem; border-top: 1px solid #d0d7de; padding-top: 0.6rem; }
)";

std::string page_head(const std::string& title) {
  return cat_str(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
      html_escape(title), "</title>\n<style>", kCss,
      "</style>\n</head>\n<body>\n<div class=\"page\">\n");
}

// The lesson page from the recorded items. Caller holds the mutex.
std::string page_html(const Recorder& r, const std::string& result_line, bool course_index,
                      const std::string& finished) {
  std::ostringstream o;
  o << page_head(cat_str(r.lesson, " - mmgrad lesson"));
  o << "<header>\n";
  if (course_index) o << "<p class=\"meta\"><a href=\"../index.html\">&larr; all lessons</a></p>\n";
  o << "<h1>" << html_escape(r.lesson) << "</h1>\n";
  o << "<p class=\"summary\">" << html_escape(r.summary) << "</p>\n";
  o << "<p class=\"meta\">" << html_escape(r.settings) << " &middot; finished "
    << html_escape(finished) << " &middot; files in <code>" << html_escape(r.out_text)
    << "</code></p>\n</header>\n";

  // Contents: the section headings.
  int headings = 0;
  for (const Item& it : r.items) headings += it.kind == Item::Kind::Heading;
  if (headings > 0) {
    o << "<nav><b>Contents</b>\n<ul>\n";
    int k = 0;
    for (const Item& it : r.items)
      if (it.kind == Item::Kind::Heading)
        o << "<li><a href=\"#s" << ++k << "\">" << html_escape(it.text) << "</a></li>\n";
    o << "<li><a href=\"#result\">Result</a></li>\n</ul>\n</nav>\n";
  }

  // Which files exist now (a lesson may delete what it wrote), and which ones ride along with a
  // figure in its caption.
  std::map<std::string, uintmax_t> size;
  for (const Item& it : r.items) {
    if (it.kind != Item::Kind::File) continue;
    std::error_code ec;
    const fs::path p = r.out / it.text;
    if (fs::is_regular_file(p, ec)) size[it.text] = fs::file_size(p, ec);
  }
  std::map<std::string, std::vector<std::string>> attached;  // figure -> its files
  std::map<std::string, bool> is_attached;
  for (const auto& [fig, s] : size) {
    (void)s;
    if (!is_figure(fig)) continue;
    for (const auto& [f, s2] : size) {
      (void)s2;
      if (!is_attached[f] && belongs_to(f, fig)) {
        attached[fig].push_back(f);
        is_attached[f] = true;
      }
    }
  }
  // Files in subfolders: counted per subfolder, shown once where the first was written.
  std::map<std::string, std::vector<std::string>> folder_files;
  for (const Item& it : r.items)
    if (it.kind == Item::Kind::File && size.count(it.text) &&
        it.text.find('/') != std::string::npos)
      folder_files[it.text.substr(0, it.text.find('/'))].push_back(it.text);

  std::map<std::string, bool> folder_shown;
  std::vector<std::string> pending_links;  // consecutive plain files, listed on one line
  auto flush_links = [&] {
    if (pending_links.empty()) return;
    o << "<p class=\"files\">Written: ";
    for (size_t k = 0; k < pending_links.size(); ++k)
      o << (k ? ", " : "") << link(pending_links[k], pending_links[k]) << " ("
        << human_size(size[pending_links[k]]) << ")";
    o << "</p>\n";
    pending_links.clear();
  };
  int k = 0;
  for (const Item& it : r.items) {
    if (it.kind == Item::Kind::File) {
      if (!size.count(it.text) || is_attached[it.text]) continue;
      const size_t slash = it.text.find('/');
      if (slash != std::string::npos) {
        const std::string folder = it.text.substr(0, slash);
        if (folder_shown[folder]) continue;
        folder_shown[folder] = true;
        flush_links();
        const auto& files = folder_files[folder];
        o << "<p class=\"files\">Written: folder " << link(folder + "/", folder + "/") << " with "
          << files.size() << " file" << (files.size() == 1 ? "" : "s");
        const size_t show = std::min<size_t>(files.size(), 3);
        for (size_t j = 0; j < show; ++j)
          o << (j ? ", " : ": ") << link(files[j], files[j].substr(slash + 1));
        o << (files.size() > show ? ", ..." : "") << "</p>\n";
      } else if (is_figure(it.text)) {
        flush_links();
        o << "<figure>\n<img src=\"" << url_path(it.text) << "\" alt=\"" << html_escape(it.text)
          << "\">\n<figcaption>" << link(it.text, it.text);
        for (const std::string& f : attached[it.text])
          o << " &middot; " << link(f, f) << " (" << human_size(size[f]) << ")";
        o << "</figcaption>\n</figure>\n";
      } else {
        pending_links.push_back(it.text);
      }
      continue;
    }
    flush_links();
    if (it.kind == Item::Kind::Heading)
      o << "<h2 id=\"s" << ++k << "\">" << html_escape(it.text) << "</h2>\n";
    else
      text_html(o, it.text);
  }
  flush_links();

  o << "<section class=\"result\" id=\"result\">\n<h2>Result</h2>\n";
  const auto items = result_items(result_line);
  if (!items.empty()) {
    o << "<table>\n<tr><th>name</th><th>value</th></tr>\n";
    for (const auto& [name, value] : items)
      o << "<tr><td>" << html_escape(name) << "</td><td class=\"num\">" << html_escape(value)
        << "</td></tr>\n";
    o << "</table>\n";
  }
  o << "<p class=\"result-line\">" << html_escape(result_line) << "</p>\n</section>\n";
  o << "<footer>Written by the lesson program at the end of its run: the text it printed, in "
       "order, with each figure where it was made. The figures and data files are the files "
       "beside this page.</footer>\n</div>\n</body>\n</html>\n";
  return o.str();
}

// The lines of a result.txt: "result: ...", "summary: ...", "settings: ...", "finished: ...".
std::map<std::string, std::string> read_result_file(const fs::path& p) {
  std::map<std::string, std::string> m;
  std::ifstream f(p);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("result:", 0) == 0) {
      m["result"] = line;
      continue;
    }
    const size_t colon = line.find(": ");
    if (colon != std::string::npos) m[line.substr(0, colon)] = line.substr(colon + 2);
  }
  return m;
}

void observer(const std::string& path) { record_file(path); }

}  // namespace

// ---- the pure pieces
// ------------------------------------------------------------------------------

std::string html_escape(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string final_terminal_text(std::string_view s) {
  std::string out, line;
  // line holds the current line as the terminal shows it; col is where the next character goes.
  size_t col = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\n') {
      out += line;
      out += '\n';
      line.clear();
      col = 0;
    } else if (c == '\r') {
      col = 0;
    } else if (c == '\033') {
      // ESC [ parameters final-byte (a CSI sequence: colours, "clear to end of line" ESC[K).
      if (i + 1 < s.size() && s[i + 1] == '[') {
        size_t j = i + 2;
        while (j < s.size() && !(s[j] >= 0x40 && s[j] <= 0x7e)) ++j;
        if (j < s.size() && s[j] == 'K') line.resize(std::min(line.size(), col));
        i = j;
      } else {
        ++i;  // a two-character escape
      }
    } else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
      // another control character: dropped
    } else {
      if (col < line.size())
        line[col] = c;
      else
        line += c;
      ++col;
    }
  }
  out += line;
  return out;
}

std::string course_index_html(const std::string& parent) {
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(parent, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    if (!it->is_directory(e2)) continue;
    if (fs::is_regular_file(it->path() / kPageFile, e2) &&
        fs::is_regular_file(it->path() / kResultFile, e2))
      names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());

  std::ostringstream o;
  o << page_head("mmgrad lessons");
  o << "<header>\n<h1>mmgrad lessons</h1>\n<p class=\"summary\">The lessons run into <code>"
    << html_escape(absolute_normal(parent).string())
    << "</code>: each links to its page, the printed narrative with its figures.</p>\n</header>\n";
  if (names.empty()) {
    o << "<p>No lesson has finished a run here yet.</p>\n";
  } else {
    o << "<table>\n<tr><th>lesson</th><th>what it does</th><th>run</th><th>result</th></tr>\n";
    for (const std::string& n : names) {
      auto m = read_result_file(fs::path(parent) / n / kResultFile);
      o << "<tr><td>" << link(n + "/" + kPageFile, n) << "</td><td>" << html_escape(m["summary"])
        << "</td><td class=\"meta\">" << html_escape(m["settings"]) << "<br>"
        << html_escape(m["finished"]) << "</td><td>";
      for (const auto& [k, v] : result_items(m["result"]))
        o << "<code class=\"kv\">" << html_escape(k) << "=" << html_escape(v) << "</code> ";
      o << "</td></tr>\n";
    }
    o << "</table>\n";
  }
  o << "<footer>Rebuilt by each lesson at the end of its run from the lesson folders present here. "
       "Static HTML: no network, no JavaScript.</footer>\n</div>\n</body>\n</html>\n";
  return o.str();
}

void write_course_index(const std::string& parent) {
  write_file_atomic((fs::path(parent) / kPageFile).string(), course_index_html(parent),
                    "lesson page");
}

// ---- recording ----------------------------------------------------------------------------------

void begin(const std::string& lesson, const std::string& summary, const std::string& out_dir,
           const std::string& settings) {
  Recorder& r = recorder();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    r.on = true;
    r.lesson = lesson;
    r.summary = summary;
    r.settings = settings;
    r.out_text = out_dir;
    r.out = absolute_normal(out_dir);
    r.items.clear();
    // Files already there (an earlier run's) are not this run's unless written again.
    r.seen = list_top_level(r.out);
  }
  set_file_written_observer(&observer);
}

bool active() {
  Recorder& r = recorder();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.on;
}

void record_text(std::string_view text) {
  Recorder& r = recorder();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (!r.on || text.empty()) return;
  if (r.items.empty() || r.items.back().kind != Item::Kind::Text)
    r.items.push_back({Item::Kind::Text, ""});
  r.items.back().text.append(text);
}

void record_heading(const std::string& title) {
  Recorder& r = recorder();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (!r.on) return;
  scan(r);  // files the previous section wrote without the observer end that section
  r.items.push_back({Item::Kind::Heading, title});
}

void record_file(const std::string& path) {
  Recorder& r = recorder();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (!r.on) return;
  const std::string rel = relative_to_out(r, path);
  if (!rel.empty()) add_file(r, rel);
}

void finish(const std::string& result_line) {
  Recorder& r = recorder();
  std::string html, result_text;
  fs::path out, parent;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (!r.on) return;
    scan(r);
    out = r.out;
    // The course index lives in the parent of a folder named after the lesson (out/<lesson>);
    // another --out (a test's temporary folder, /tmp/x) gets its page but no index beside it.
    const bool course =
        out.filename() == r.lesson && out.has_parent_path() && out.parent_path() != out.root_path();
    if (course) parent = out.parent_path();
    const std::string finished = local_time_text();
    html = page_html(r, result_line, course, finished);
    result_text = cat_str(result_line, "\nsummary: ", r.summary, "\nsettings: ", r.settings,
                          "\nfinished: ", finished, "\n");
  }
  // The page's own files pass the observer too; record_file ignores them (is_page_file).
  write_file_atomic((out / kResultFile).string(), result_text, "lesson page");
  write_file_atomic((out / kPageFile).string(), html, "lesson page");
  if (!parent.empty()) write_course_index(parent.string());
}

void end() {
  Recorder& r = recorder();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    r.on = false;
    r.items.clear();
    r.seen.clear();
  }
  set_file_written_observer(nullptr);
}

}  // namespace mmgrad::lesson::page
