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
//   plot::Histogram m("Margins", "margin", "images");
//   m.set_bins(-0.6, 0.6, 24).add_values("test images", margins).save("out/08/margins.svg");
//
//   plot::Panels two("Loss and accuracy", 2);     // quantities of different units: one panel each
//   two.add(loss_plot).add(accuracy_plot).save("out/10/curves.svg");
//
// Every text is XML-escaped (and bytes that are not valid UTF-8 are replaced), non-finite values
// are skipped rather than drawn, and save() writes a temporary file and renames it into place,
// creating parent folders. Bad input (mismatched lengths, wrong shapes) throws mmgrad::Error.
//
// Figures without defects, by construction rather than by tuning each figure:
//   - Text is measured (detail::text_width: a per-character width table, the wider of Helvetica/
//     Arial and DejaVu Sans for each character), and titles and axis labels are fitted to the
//     canvas: wrapped onto a second line and/or set smaller, never cut off at the edges.
//   - Labels cannot overlap: category and tick labels are turned or thinned out, and bar value
//     labels are placed only where their measured box is clear of every other text (above the
//     bar, turned, or inside it); labels that find no place are left out and a note says where
//     the numbers are (the CSV).
//   - save("x/fig.svg") also writes "x/fig.csv": a header row and one row per point, bar, bin or
//     cell, so a learner can replot the data with any tool.
//   - Histograms are bars (Histogram), with a zero marker when the data has both signs; quantities
//     of different units go into separate panels (Panels), never onto one axis; a line plot takes
//     a log x or y axis where the quantity spans decades (set_log_x / set_log_y).
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
  // The data drawn, as CSV: a header row, then one row per point / bar / bin / cell.
  virtual std::string to_csv() const = 0;
  // Writes to_svg() to path and to_csv() beside it (path with ".svg" replaced by ".csv"), each
  // atomically; parent folders are created.
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
  // A log x axis (x > 0), for a quantity that spans decades such as k in Recall@k for k = 1..100:
  // on a linear axis k = 1..10 would be squashed into the first tenth.
  LinePlot& set_log_x(bool on = true);
  // Draw a dot at each point (useful for few points, e.g. recall@k for k = 1, 5, 10).
  LinePlot& set_markers(bool on = true);
  // Fixed axis ranges instead of fitting the data (lines are clipped to the plot area).
  LinePlot& set_xlim(double lo, double hi);
  LinePlot& set_ylim(double lo, double hi);
  std::string to_svg() const override;
  // series,x,y (a horizontal line: x empty)
  std::string to_csv() const override;

 private:
  struct Series {
    std::string name, color;
    std::vector<double> xs, ys;
    bool dashed = false;
    bool hline = false;
  };
  std::vector<Series> series_;
  bool log_y_ = false, log_x_ = false, markers_ = false;
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
  // group,x,y
  std::string to_csv() const override;

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
  // row,column,value (labels, or indices when there are none)
  std::string to_csv() const override;

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
  // category,series,value
  std::string to_csv() const override;

 private:
  std::string render(bool note, bool turned, size_t& dropped) const;
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

// A histogram drawn as bars (one bar per bin, touching), several series side by side in each bin.
// When the bins cover both negative and positive values, a zero marker (a dark vertical line
// labelled 0) shows where the sign changes. Values outside [lo, hi] are counted in the first or
// last bin (as align::histogram does; torch.histc would drop them) and non-finite values are
// skipped; a note in the figure says how many were clamped.
class Histogram : public Chart {
 public:
  explicit Histogram(std::string title, std::string xlabel = "", std::string ylabel = "count");
  // `bins` equal bins over [lo, hi]. Call before add_values.
  Histogram& set_bins(double lo, double hi, int bins);
  Histogram& add_values(const std::string& name, const std::vector<double>& values,
                        const std::string& color = "");
  // Counts per bin of series i (after set_bins and add_values).
  const std::vector<double>& counts(size_t i) const;
  std::string to_svg() const override;
  // series,bin_lo,bin_hi,count
  std::string to_csv() const override;

 private:
  struct Series {
    std::string name, color;
    std::vector<double> counts;
    int64_t clamped = 0;
  };
  double lo_ = 0, hi_ = 1;
  int bins_ = 0;
  std::vector<Series> series_;
};

// Several charts in one SVG, side by side in `columns` columns (rows as needed), under one
// title: small multiples, for quantities of different units (a loss and an accuracy) that must
// not share an axis. add() takes a snapshot of the chart as it is then.
class Panels : public Chart {
 public:
  explicit Panels(std::string title, int columns = 2);
  Panels& add(const Chart& chart);
  std::string to_svg() const override;
  // panel,<the panels' columns> (panel = the panel's number from 1; columns a panel lacks are
  // left empty)
  std::string to_csv() const override;

 private:
  struct Panel {
    std::string svg, csv;
    int width = 0, height = 0;
  };
  int columns_ = 2;
  std::vector<Panel> panels_;
};

}  // namespace mmgrad::plot
