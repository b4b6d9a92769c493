// Image files and image tensors: load PNG/JPEG/BMP/... (stb_image), resize, save PNG
// (stb_image_write), and labelled sample grids for lessons.
//
// Image tensors follow PyTorch's layout: float CHW (channels, height, width) with values in
// [0, 1]; a batch is NCHW. These are data transforms, not autograd ops: they take and return
// plain tensors without gradient.
#pragma once

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

// A grid of images (each [H, W] or [C, H, W] with C in {1, 3, 4}; sizes may differ, each is
// centred in its cell) in ncols columns, nearest-neighbour upscaled by `scale`, saved as an RGB
// PNG. With labels (one per image, may contain '\n'), each label is drawn under its tile in a
// small bitmap font (stb_easy_font, 2x larger from scale 4 up), and the labels are also written
// one per line to `path + ".txt"` as "index<TAB>row<TAB>col<TAB>label" (newlines as " / ").
// Characters outside printable ASCII are drawn as '?'. Cells widen to fit the longest label line
// (up to 40 characters; longer lines are cut in the picture, kept whole in the text file).
// Layout, in pixels: a white background with a 4-pixel border; each cell is
// max(largest tile width * scale, widest label line) + 4 wide and
// largest tile height * scale + label height + 4 tall, where the label height is
// 12 * font size * (most lines in a label) + 2, or 0 without labels; min(ncols, N) columns.
void save_image_grid(const std::vector<Tensor>& images, int64_t ncols, const std::string& path,
                     const std::vector<std::string>& labels = {}, int scale = 1);
// The same for a batch [N, C, H, W] (or [N, H, W]).
void save_image_grid(const Tensor& batch, int64_t ncols, const std::string& path,
                     const std::vector<std::string>& labels = {}, int scale = 1);

}  // namespace mmgrad::data
