// Figures as SVG files (open them in any browser): line plots, scatter plots, annotated heatmaps
// and grouped bar charts, for the pictures the lessons show.
//
//   plot::LinePlot p("Training loss", "step", "loss");
//   p.add_series("train", steps, train_loss).add_series("val", steps, val_loss);
//   p.set_log_y();
//   p.save("out/03/loss.svg");
//
//   plot::ScatterPlot s("Embeddings (PCA)", "PC 1", "PC 2");
//   s.add_classes(img_xy, labels, class_names, plot::Marker::Circle, "image");
//   s.add_classes(txt_xy, labels, class_names, plot::Marker::Square, "text");
//   s.save("out/05/embeddings.svg");
//
//   plot::Heatmap h("Confusion matrix", confusion, class_names, class_names);
//   h.set_axis_labels("predicted", "true").save("out/02/confusion.svg");
//
// Every text is XML-escaped (and bytes that are not valid UTF-8 are replaced), non-finite values
// are skipped rather than drawn, and save() writes a temporary file and renames it into place,
// creating parent folders. Bad input (mismatched lengths, wrong shapes) throws mmgrad::Error.
#pragma once

#include <string>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::plot {

enum class Marker { Circle, Square, Triangle, Diamond, Cross, Plus };

// Colours are SVG colour strings ("#1f77b4", "red"). palette(i): the i-th colour of a
// 10-colour qualitative palette (cycled); "" in an argument means "next palette colour".
std::string palette(size_t i);

// Common to every chart: title, axis labels, size, save.
class Chart {
 public:
  virtual ~Chart() = default;
  // The whole SVG document.
  virtual std::string to_svg() const = 0;
  // Writes to_svg() to path (atomically; parent folders are created).
  void save(const std::string& path) const;

  void set_size(int width, int height);
  void set_title(const std::string& title) { title_ = title; }
  void set_axis_labels(const std::string& xlabel, const std::string& ylabel) {
    xlabel_ = xlabel;
    ylabel_ = ylabel;
  }

 protected:
  Chart(std::string title, std::string xlabel, std::string ylabel, int width, int height)
      : title_(std::move(title)),
        xlabel_(std::move(xlabel)),
        ylabel_(std::move(ylabel)),
        width_(width),
        height_(height) {}
  std::string title_, xlabel_, ylabel_;
  int width_, height_;
};

// Lines through (x, y) points, one per named series, with a legend. Points with a non-finite
// value (or y <= 0 on a log axis) break the line instead of being drawn.
class LinePlot : public Chart {
 public:
  explicit LinePlot(std::string title, std::string xlabel = "", std::string ylabel = "");
  LinePlot& add_series(const std::string& name, const std::vector<double>& xs,
                       const std::vector<double>& ys, const std::string& color = "",
                       bool dashed = false);
  // x = 0, 1, 2, ... (for a colour or dashes, pass the xs too)
  LinePlot& add_series(const std::string& name, const std::vector<double>& ys);
  // A horizontal reference line across the plot (e.g. a chance baseline), in the legend.
  LinePlot& add_hline(const std::string& name, double y, const std::string& color = "#888888",
                      bool dashed = true);
  LinePlot& set_log_y(bool on = true);
  // Draw a dot at each point (useful for few points, e.g. recall@k for k = 1, 5, 10).
  LinePlot& set_markers(bool on = true);
  // Fixed axis ranges instead of fitting the data (lines are clipped to the plot area).
  LinePlot& set_xlim(double lo, double hi);
  LinePlot& set_ylim(double lo, double hi);
  std::string to_svg() const override;

 private:
  struct Series {
    std::string name, color;
    std::vector<double> xs, ys;
    bool dashed = false;
    bool hline = false;
  };
  std::vector<Series> series_;
  bool log_y_ = false, markers_ = false;
  bool has_xlim_ = false, has_ylim_ = false;
  double xlim_[2] = {0, 1}, ylim_[2] = {0, 1};
};

// Points with a colour and a marker per group, and a legend.
class ScatterPlot : public Chart {
 public:
  explicit ScatterPlot(std::string title, std::string xlabel = "", std::string ylabel = "");
  // One group of points. in_legend = false hides it from the legend.
  ScatterPlot& add_points(const std::string& name, const std::vector<double>& xs,
                          const std::vector<double>& ys, Marker marker = Marker::Circle,
                          const std::string& color = "", bool in_legend = true);
  // One group per class: point i has class labels[i] (in [0, class_names.size())), coloured by
  // class (colors[c], or palette(c) when colors is empty) and named "class_names[c] (suffix)"
  // (just the class name when suffix is empty). Classes with no points are left out.
  ScatterPlot& add_classes(const std::vector<double>& xs, const std::vector<double>& ys,
                           const std::vector<int64_t>& labels,
                           const std::vector<std::string>& class_names,
                           Marker marker = Marker::Circle, const std::string& suffix = "",
                           const std::vector<std::string>& colors = {});
  // The same from a [N, 2] tensor (e.g. PCAResult::projected) and int64 labels [N].
  ScatterPlot& add_classes(const Tensor& xy, const Tensor& labels,
                           const std::vector<std::string>& class_names,
                           Marker marker = Marker::Circle, const std::string& suffix = "",
                           const std::vector<std::string>& colors = {});
  // A legend line without points (e.g. a grey square meaning "text embeddings").
  ScatterPlot& add_legend_entry(const std::string& name, const std::string& color, Marker marker);
  ScatterPlot& set_point_size(double radius);
  ScatterPlot& set_opacity(double opacity);
  std::string to_svg() const override;

 private:
  struct Group {
    std::string name, color;
    Marker marker = Marker::Circle;
    std::vector<double> xs, ys;
    bool in_legend = true;
  };
  std::vector<Group> groups_;
  std::vector<Group> legend_only_;
  double radius_ = 4.0, opacity_ = 0.8;
  size_t next_color_ = 0;
};

enum class Colormap {
  Viridis,  // dark purple -> yellow (perceptually uniform; the default)
  Blues,    // white -> dark blue (counts, confusion matrices)
  RedBlue,  // blue (low) -> white -> red (high), for signed values such as cosine similarity
};

// A matrix as coloured cells with a colour bar; values printed in the cells when they fit.
// Its size follows from the cell size (set_cell_size), not from set_size. Without labels, rows
// and columns are numbered when there are at most 40 of them. At most 512x512 cells.
class Heatmap : public Chart {
 public:
  Heatmap(std::string title, const std::vector<std::vector<double>>& values,
          std::vector<std::string> row_labels = {}, std::vector<std::string> col_labels = {});
  // Any 2-D tensor (int64 or float).
  Heatmap(std::string title, const Tensor& matrix, std::vector<std::string> row_labels = {},
          std::vector<std::string> col_labels = {});
  Heatmap& set_colormap(Colormap cmap);
  // Colour range (default: the data's min and max; values outside are clamped to the ends).
  Heatmap& set_range(double vmin, double vmax);
  // Cell numbers: -1 = automatic (when cells are big enough), 0 = never, 1 = always.
  Heatmap& set_annotate(int mode);
  // Digits after the point in cell numbers (default: 0 for all-integer data, else 2).
  Heatmap& set_decimals(int decimals);
  // Side of a cell in pixels (default: fits about 480 pixels, between 6 and 48 per cell).
  Heatmap& set_cell_size(int pixels);
  std::string to_svg() const override;

 private:
  void check_labels() const;
  int64_t rows_ = 0, cols_ = 0;
  std::vector<double> values_;  // row-major
  std::vector<std::string> row_labels_, col_labels_;
  Colormap cmap_ = Colormap::Viridis;
  bool has_range_ = false;
  double vmin_ = 0, vmax_ = 1;
  int annotate_ = -1, decimals_ = -1, cell_ = -1;
};

// Bars per category, one bar per series side by side (grouped), with a legend for several
// series. Non-finite values leave a gap.
class BarChart : public Chart {
 public:
  explicit BarChart(std::string title, std::string xlabel = "", std::string ylabel = "");
  BarChart& set_categories(const std::vector<std::string>& categories);
  // values.size() must equal the number of categories.
  BarChart& add_series(const std::string& name, const std::vector<double>& values,
                       const std::string& color = "");
  // Print each bar's value above it.
  BarChart& set_value_labels(bool on = true, int decimals = 2);
  BarChart& set_ylim(double lo, double hi);
  std::string to_svg() const override;

 private:
  struct Series {
    std::string name, color;
    std::vector<double> values;
  };
  std::vector<std::string> categories_;
  std::vector<Series> series_;
  bool value_labels_ = false;
  int decimals_ = 2;
  bool has_ylim_ = false;
  double ylim_[2] = {0, 1};
};

}  // namespace mmgrad::plot
