// Lesson 10's dataset on disk: speed-trace PNGs plus a metadata CSV, read back lazily.
//
//   <root>/speed_traces/<race>/<driver>.png   one trace per driver per race
//   <root>/metadata.csv                       one row per driver per race:
//     race,driver,image,circuit,weather,compound,grid,driver_rating,car_rating,
//     position,label,trace_stops,trace_incident,trace_degradation
//
// The table features are circuit .. car_rating. position and label are the outcome. The three
// trace_* columns are what a race engineer would annotate on a trace (pit stops, incident,
// tyre-degradation level): they are the labels of the backbone's pretext task only, never model
// inputs. Images are not read when the CSV is: TraceDataset loads them when asked, and a missing,
// truncated or corrupt file is reported and treated as a missing image, never as a fatal error.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "10_fusion/fusion_sim.h"
#include "mmgrad/tensor/tensor.h"

namespace mmgrad::fusion {

struct TraceRecord {
  std::string race, driver, image;  // image: path relative to the dataset root
  int circuit = 0, weather = 0, compound = 0, grid = 1;
  double driver_rating = 0, car_rating = 0;
  int position = 1, label = 0;
  int trace_stops = 0, trace_incident = 0, trace_degradation = 0;  // pretext labels
};

// Renders every driver's trace to <root>/speed_traces/<race>/<driver>.png and writes
// <root>/metadata.csv. Returns the records, in the order of `rows`.
std::vector<TraceRecord> write_dataset(const std::vector<DriverRace>& rows,
                                       const std::string& root);
void write_metadata_csv(const std::vector<TraceRecord>& records, const std::string& path);
// Reads metadata.csv, checking the header, the number of fields and every value's type and
// range; a bad file throws mmgrad::Error naming the file, the line and the field.
std::vector<TraceRecord> read_metadata_csv(const std::string& path);

// The table as model input: driver rating, car rating and grid position standardised with the
// training rows' mean and standard deviation, then one-hot circuit, weather and compound.
class TabularFeatures {
 public:
  static TabularFeatures fit(const std::vector<TraceRecord>& train);
  // float32 [N, dim()]
  Tensor transform(const std::vector<TraceRecord>& records) const;
  int64_t dim() const;
  std::vector<std::string> names() const;

 private:
  double mean_[3] = {0, 0, 0}, std_[3] = {1, 1, 1};
};

// One trace as the model sees it: grey, resized to [1, h, w], "ink" (1 = line, 0 = paper).
// Returns nothing when the file does not exist or cannot be decoded; `why` gets the reason.
std::optional<Tensor> load_trace(const std::string& path, int64_t h, int64_t w, std::string* why);

struct ImageBatch {
  Tensor images;   // float32 [B, 1, h, w]; all zeros where the image is missing
  Tensor present;  // float32 [B]: 1 = loaded, 0 = missing or unreadable
};

class TraceDataset {
 public:
  TraceDataset(std::vector<TraceRecord> records, std::string root, int64_t h, int64_t w);
  int64_t size() const { return static_cast<int64_t>(records_.size()); }
  const TraceRecord& operator[](int64_t i) const;
  const std::vector<TraceRecord>& records() const { return records_; }
  std::string image_path(int64_t i) const;
  // Reads the images of these samples now (lazily: nothing is read before this call).
  // Unreadable files are logged once each (to stdout, "warning: ...") and counted as missing.
  ImageBatch load_images(const std::vector<int64_t>& indices);
  // int64 [N] labels of these samples.
  Tensor labels(const std::vector<int64_t>& indices) const;
  int64_t files_read() const { return files_read_; }
  int64_t missing_files() const { return static_cast<int64_t>(missing_.size()); }
  int64_t unreadable_files() const { return static_cast<int64_t>(unreadable_.size()); }

 private:
  std::vector<TraceRecord> records_;
  std::string root_;
  int64_t h_, w_;
  int64_t files_read_ = 0;
  std::set<std::string> missing_, unreadable_;
};

// Indices of the records whose race is / is not in `races`.
std::vector<int64_t> indices_of_races(const std::vector<TraceRecord>& records,
                                      const std::set<std::string>& races, bool in);

}  // namespace mmgrad::fusion
