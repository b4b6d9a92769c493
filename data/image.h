// Image files and image tensors: load PNG/JPEG/BMP/... (stb_image), resize, save PNG
// (stb_image_write), and labelled sample grids for lessons.
//
// Image tensors follow PyTorch's layout: float CHW (channels, height, width) with values in
// [0, 1]; a batch is NCHW. These are data transforms, not autograd ops: they take and return
// plain tensors without gradient.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::data {

// Reads an image file into float32 [C, H, W] in [0, 1] (byte / 255; 16-bit PNGs / 65535).
// channels = 0 keeps the file's channel count; 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)
// converts. Throws with stb's reason for unreadable, truncated or corrupt files.
//
// Files are validated and bounded before anything is decoded (a 20-byte header must not make
// anyone allocate gigabytes): at most kMaxImageSide pixels per side and kMaxImagePixels in all;
// a binary PGM/PPM must hold all the pixel bytes its header declares; a PNG's chunks must fit in
// the file; and no file may declare more than kMaxPixelsPerByte pixels per byte of file (the most
// any format stb reads can compress: deflate's 1032:1 at 1 bit per pixel; only a progressive JPEG
// of a flat picture could go beyond, and is refused).
Tensor load_image(const std::string& path, int channels = 0);
// The same from a file's bytes already in memory; `name` stands for the path in error messages.
Tensor decode_image(const void* data, size_t size, int channels = 0,
                    const std::string& name = "<memory>");

inline constexpr int64_t kMaxImageSide = int64_t{1} << 16;
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 28;
inline constexpr int64_t kMaxPixelsPerByte = 1032 * 8;

// Bilinear resize of [C, H, W] or [N, C, H, W] (float32/float64, any strides) to [.., h, w].
// Same sampling as PyTorch's F.interpolate(mode="bilinear", align_corners=False): output pixel
// centre (i + 0.5) maps to input coordinate (i + 0.5) * H_in / h - 0.5 (clamped at 0), and the
// value is interpolated between the two nearest input pixels in each direction. No antialiasing
// (like PyTorch's default): strong downscaling skips pixels.
Tensor resize_bilinear(const Tensor& image, int64_t h, int64_t w);

// Writes [H, W] (grey) or [C, H, W] with C in {1, 3, 4} (float; values clamped to [0, 1] and
// rounded to bytes) as PNG (or JPEG for a .jpg/.jpeg path, quality 95). Parent folders are
// created. The file is written to a temporary name and renamed, so readers never see half a file.
void save_image(const Tensor& image, const std::string& path);

// ---- labelled image grids ----------------------------------------------------------------------
//
// A grid of images (each [H, W] or [C, H, W] with C in {1, 3, 4}; sizes may differ, each is
// centred in its cell) in ncols columns, nearest-neighbour upscaled by `scale`, saved as an RGB
// PNG. Labels (one per image, may contain '\n') are drawn under their tiles in a small bitmap
// font (stb_easy_font; font size 2, i.e. each font pixel 2x2, from scale 4 up); characters outside
// printable ASCII are drawn as '?'.
//
// Labels never run into a neighbour: each line is measured (stb_easy_font_width) and word-wrapped
// to the cell's width; a word longer than a whole line is broken between characters; each row
// of cells grows downwards to the label with the most lines in that row (at most
// kMaxLabelLines; a longer label ends in ".." in the picture and is kept whole in the CSV).
//
// Layout, in pixels (fs = font size, m = 3 when any cell is marked, else 0): a white background
// with a 4-pixel border; a header (title, mark legend, colour bar) when one is asked for; cells
//   wide:  max(tile_w + 2m, min(widest label line, kLabelWrapWidth * fs) + 6 * fs) + 4
//          (unlabelled: tile_w + 2m + 4), labels wrapped to the cell less 3 * fs on each side,
//   tall:  tile_h + 2m + label height + 4, label height = 12 * fs * (most lines in the row) + 2
//          (0 unlabelled)
// where tile_w, tile_h are the largest tile's size * scale; min(ncols, N) columns. So labels
// up to kLabelWrapWidth font pixels (about 24 characters) widen the cells as needed and longer
// ones wrap.
//
// A labelled or marked grid also gets its labels as CSV beside the picture (the path with its
// extension replaced by ".csv": "fig.png" -> "fig.csv"), written atomically: a header row
// "index,row,col,label,marked" and one row per cell; a label's line breaks are written as " / ".
inline constexpr int kLabelWrapWidth = 144;  // font pixels
inline constexpr size_t kMaxLabelLines = 16;

// A colour scale drawn in a grid's header: a viridis gradient from `lo` (left) to `hi` (right)
// with both values printed at its ends and `label` above it (see overlay_heatmap).
struct ColorBar {
  double lo = 0, hi = 1;
  std::string label;
};

struct GridOptions {
  std::vector<std::string> labels;  // one per image, or none
  // One per image, or none. A marked cell gets a red frame around its tile and a red label,
  // e.g. to show which predictions are wrong; say what the mark means in mark_legend.
  std::vector<bool> marked;
  int scale = 1;  // nearest-neighbour upscaling of every tile, 1 to 32
  // Header lines above the cells, each wrapped to the grid's width: the title (black), a red
  // frame swatch with mark_legend (when not empty), and the colour bar (when given).
  std::string title;
  std::string mark_legend;
  std::optional<ColorBar> colorbar;
};

void save_image_grid(const std::vector<Tensor>& images, int64_t ncols, const std::string& path,
                     const GridOptions& options);
// Labels and scale only (as above, with nothing marked and no header).
void save_image_grid(const std::vector<Tensor>& images, int64_t ncols, const std::string& path,
                     const std::vector<std::string>& labels = {}, int scale = 1);
// The same for a batch [N, C, H, W] (or [N, H, W]).
void save_image_grid(const Tensor& batch, int64_t ncols, const std::string& path,
                     const std::vector<std::string>& labels = {}, int scale = 1);

// The grid's text layout, exposed so it can be tested and reused. label_text_width: the width in
// font pixels of one line of text (no '\n'), as drawn. wrap_label: the lines `label` is drawn
// as in a column `max_width` font pixels wide: split at '\n', then greedily filled word by word
// (words are separated by spaces); a word wider than the column is broken between characters
// (one character per line at least, so a column narrower than a character is the only way a
// line can be wider than max_width); more than max_lines lines are cut, the last ending "..".
int label_text_width(const std::string& line);
std::vector<std::string> wrap_label(const std::string& label, int max_width,
                                    size_t max_lines = kMaxLabelLines);

// ---- heat maps over images ---------------------------------------------------------------------

// The viridis colour scale (the one plot/ uses): t in [0, 1] (clamped; NaN -> 0) to RGB in
// [0, 1], dark purple -> blue -> green -> yellow. Perceptually uniform and readable in grey, so
// equal steps in value look like equal steps in colour.
std::array<float, 3> viridis(double t);

// A heat map laid over a picture, as attention or saliency maps are shown: the image ([H, W] or
// [C, H, W], C = 1 or 3; RGB is turned grey by luminance 0.299 R + 0.587 G + 0.114 B) becomes
// grey, `heat` ([h, w] or [1, h, w], any size: a coarse map such as one weight per ViT patch) is
// upsampled to H x W with resize_bilinear, mapped linearly from [lo, hi] to [0, 1] (clamped) and
// coloured with viridis, and the two are blended: out = (1 - alpha) * grey + alpha * colour.
// Returns float32 [3, H, W]. Pass the same lo, hi for every image of a figure and draw them as a
// ColorBar, so that colours compare across images.
Tensor overlay_heatmap(const Tensor& image, const Tensor& heat, double lo, double hi,
                       double alpha = 0.6);

}  // namespace mmgrad::data
