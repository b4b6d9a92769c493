#include <algorithm>
#include <cstdlib>

#include "mmgrad/core/error.h"
#include "mmgrad/plot/figure.h"
#include "mmgrad/plot/svg.h"

namespace mmgrad::plot {

using namespace detail;

namespace {

// The value of attribute `name` in the first <svg ...> tag (our own charts write it).
int svg_size(const std::string& svg, const std::string& name) {
  const size_t tag = svg.find("<svg ");
  const size_t at = svg.find(" " + name + "=\"", tag);
  MMGRAD_CHECK(tag != std::string::npos && at != std::string::npos,
               "Panels::add: the chart's SVG has no ", name);
  return std::atoi(svg.c_str() + at + name.size() + 3);
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
}

// The records of a CSV text (RFC 4180: quoted fields may hold commas, quotes and line breaks).
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"')
        field += '"', ++i;
      else if (c == '"')
        quoted = false;
      else
        field += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(field), field.clear();
    } else if (c == '\n') {
      row.push_back(field), field.clear();
      rows.push_back(row), row.clear();
    } else {
      field += c;
    }
  }
  if (!field.empty() || !row.empty()) row.push_back(field), rows.push_back(row);
  return rows;
}

}  // namespace

Panels::Panels(std::string title, int columns) : Chart(std::move(title), "", "", 100, 100) {
  MMGRAD_CHECK(columns >= 1 && columns <= 16, "Panels: columns must be in [1, 16], got ", columns);
  columns_ = columns;
}

Panels& Panels::add(const Chart& chart) {
  Panel p;
  p.svg = chart.to_svg();
  p.csv = chart.to_csv();
  p.width = svg_size(p.svg, "width");
  p.height = svg_size(p.svg, "height");
  panels_.push_back(std::move(p));
  return *this;
}

std::string Panels::to_svg() const {
  MMGRAD_CHECK(!panels_.empty(), "Panels: no panels (call add)");
  const size_t n = panels_.size(), cols = std::min<size_t>(columns_, n);
  const size_t rows = (n + cols - 1) / cols;
  std::vector<double> col_w(cols, 0), row_h(rows, 0);
  for (size_t i = 0; i < n; ++i) {
    col_w[i % cols] = std::max<double>(col_w[i % cols], panels_[i].width);
    row_h[i / cols] = std::max<double>(row_h[i / cols], panels_[i].height);
  }
  double total_w = 0, total_h = 0;
  for (double w : col_w) total_w += w;
  for (double h : row_h) total_h += h;
  const int width = static_cast<int>(total_w);
  const double top = title_.empty() ? 0 : title_space(title_, width);
  Svg svg(width, static_cast<int>(top + total_h));
  if (!title_.empty()) draw_title(svg, width, title_block(title_, width));
  // Each panel is the chart's own <svg> element nested at its place; ids get the panel's number
  // so that the panels' clip paths and gradients stay apart.
  double y = top;
  for (size_t r = 0; r < rows; ++r) {
    double x = 0;
    for (size_t c = 0; c < cols && r * cols + c < n; ++c) {
      const size_t i = r * cols + c;
      std::string s = panels_[i].svg;
      const size_t open = s.find("<svg ");
      s = s.substr(open);
      replace_all(s, "xmlns=\"http://www.w3.org/2000/svg\" ",
                  "x=\"" + num(x) + "\" y=\"" + num(y) + "\" ");
      const std::string k = "-p" + std::to_string(i + 1);
      replace_all(s, "id=\"plot-area\"", "id=\"plot-area" + k + "\"");
      replace_all(s, "url(#plot-area)", "url(#plot-area" + k + ")");
      replace_all(s, "id=\"colorbar\"", "id=\"colorbar" + k + "\"");
      replace_all(s, "url(#colorbar)", "url(#colorbar" + k + ")");
      svg.raw(s);
      x += col_w[c];
    }
    y += row_h[r];
  }
  return svg.finish();
}

std::string Panels::to_csv() const {
  // One table: the union of the panels' columns in order of first appearance, after "panel".
  std::vector<std::string> header;
  std::vector<std::vector<std::vector<std::string>>> tables;
  for (const Panel& p : panels_) {
    tables.push_back(parse_csv(p.csv));
    if (tables.back().empty()) continue;
    for (const std::string& h : tables.back()[0])
      if (std::find(header.begin(), header.end(), h) == header.end()) header.push_back(h);
  }
  std::string out = "panel";
  for (const std::string& h : header) {
    out += ',';  // (not "," + ...: GCC 12 warns falsely, -Wrestrict, on that temporary)
    out += csv_field(h);
  }
  out += "\n";
  for (size_t i = 0; i < tables.size(); ++i) {
    if (tables[i].empty()) continue;
    const std::vector<std::string>& head = tables[i][0];
    for (size_t r = 1; r < tables[i].size(); ++r) {
      out += std::to_string(i + 1);
      for (const std::string& h : header) {
        auto it = std::find(head.begin(), head.end(), h);
        const size_t col = static_cast<size_t>(it - head.begin());
        out += ",";
        if (it != head.end() && col < tables[i][r].size()) out += csv_field(tables[i][r][col]);
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace mmgrad::plot
