#include "10_fusion/fusion_data.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/format.h"
#include "mmgrad/core/error.h"
#include "mmgrad/core/file_util.h"
#include "mmgrad/data/image.h"
#include "mmgrad/ops/elementwise.h"

namespace mmgrad::fusion {
namespace {

const char* kHeader =
    "race,driver,image,circuit,weather,compound,grid,driver_rating,car_rating,position,label,"
    "trace_stops,trace_incident,trace_degradation";
constexpr size_t kFields = 14;

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// Where a CSV value came from, for error messages.
struct Where {
  const std::string& path;
  int line;
  const char* field;
};

int parse_int(const std::string& s, int lo, int hi, const Where& w) {
  try {
    size_t pos = 0;
    long v = std::stol(s, &pos);
    MMGRAD_CHECK(pos == s.size(), "");
    MMGRAD_CHECK(v >= lo && v <= hi, "");
    return static_cast<int>(v);
  } catch (...) {
    fail(cat_str("read_metadata_csv: ", w.path, " line ", w.line, ": field ", w.field, " is '", s,
                 "'; expected an integer in ", lo, "..", hi));
  }
}

double parse_double(const std::string& s, const Where& w) {
  try {
    size_t pos = 0;
    double v = std::stod(s, &pos);
    MMGRAD_CHECK(pos == s.size() && std::isfinite(v), "");
    return v;
  } catch (...) {
    fail(cat_str("read_metadata_csv: ", w.path, " line ", w.line, ": field ", w.field, " is '", s,
                 "'; expected a finite number"));
  }
}

}  // namespace

std::vector<TraceRecord> write_dataset(const std::vector<DriverRace>& rows,
                                       const std::string& root) {
  std::vector<TraceRecord> records;
  records.reserve(rows.size());
  for (const DriverRace& d : rows) {
    TraceRecord r;
    r.race = d.race;
    r.driver = d.driver;
    r.image = "speed_traces/" + d.race + "/" + d.driver + ".png";
    r.circuit = d.circuit;
    r.weather = d.weather;
    r.compound = d.compound;
    r.grid = d.grid;
    r.driver_rating = d.driver_rating;
    r.car_rating = d.car_rating;
    r.position = d.position;
    r.label = d.label;
    TraceProperties p = trace_properties(d);
    r.trace_stops = p.stops_class;
    r.trace_incident = p.incident;
    r.trace_degradation = p.degradation_class;
    data::save_image(render_trace(d.lap_speed, d.ref_speed), root + "/" + r.image);
    records.push_back(std::move(r));
  }
  write_metadata_csv(records, root + "/metadata.csv");
  return records;
}

void write_metadata_csv(const std::vector<TraceRecord>& records, const std::string& path) {
  std::ostringstream os;
  os << kHeader << "\n";
  char buf[512];
  for (const TraceRecord& r : records) {
    std::snprintf(buf, sizeof buf, "%s,%s,%s,%d,%d,%d,%d,%.2f,%.2f,%d,%d,%d,%d,%d\n",
                  r.race.c_str(), r.driver.c_str(), r.image.c_str(), r.circuit, r.weather,
                  r.compound, r.grid, r.driver_rating, r.car_rating, r.position, r.label,
                  r.trace_stops, r.trace_incident, r.trace_degradation);
    os << buf;
  }
  write_file_atomic(path, os.str(), "write_metadata_csv");
}

std::vector<TraceRecord> read_metadata_csv(const std::string& path) {
  std::ifstream in(path);
  MMGRAD_CHECK(in.good(), "read_metadata_csv: cannot open ", path);
  std::string line;
  MMGRAD_CHECK(std::getline(in, line), "read_metadata_csv: ", path, " is empty");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  MMGRAD_CHECK(line == kHeader, "read_metadata_csv: ", path, " line 1: header is '", line,
               "'; expected '", kHeader, "'");
  std::vector<TraceRecord> out;
  int ln = 1;
  while (std::getline(in, line)) {
    ++ln;
    if (line.empty() || line == "\r") continue;
    std::vector<std::string> f = split(line);
    MMGRAD_CHECK(f.size() == kFields, "read_metadata_csv: ", path, " line ", ln, " has ", f.size(),
                 " fields; expected ", kFields);
    TraceRecord r;
    r.race = f[0];
    r.driver = f[1];
    r.image = f[2];
    MMGRAD_CHECK(!r.race.empty() && !r.driver.empty() && !r.image.empty(),
                 "read_metadata_csv: ", path, " line ", ln,
                 ": race, driver and image must not be empty");
    const int nc = static_cast<int>(circuits().size());
    r.circuit = parse_int(f[3], 0, nc - 1, {path, ln, "circuit"});
    r.weather = parse_int(f[4], 0, 2, {path, ln, "weather"});
    r.compound = parse_int(f[5], 0, 2, {path, ln, "compound"});
    r.grid = parse_int(f[6], 1, kDriversPerRace, {path, ln, "grid"});
    r.driver_rating = parse_double(f[7], {path, ln, "driver_rating"});
    r.car_rating = parse_double(f[8], {path, ln, "car_rating"});
    r.position = parse_int(f[9], 1, kDriversPerRace, {path, ln, "position"});
    r.label = parse_int(f[10], 0, kNumClasses - 1, {path, ln, "label"});
    MMGRAD_CHECK(r.label == finish_class(r.position), "read_metadata_csv: ", path, " line ", ln,
                 ": label ", r.label, " does not match position ", r.position);
    r.trace_stops = parse_int(f[11], 0, 2, {path, ln, "trace_stops"});
    r.trace_incident = parse_int(f[12], 0, 2, {path, ln, "trace_incident"});
    r.trace_degradation = parse_int(f[13], 0, 2, {path, ln, "trace_degradation"});
    out.push_back(std::move(r));
  }
  MMGRAD_CHECK(!out.empty(), "read_metadata_csv: ", path, " has a header but no rows");
  return out;
}

// ---- table features ---------------------------------------------------------------------------

TabularFeatures TabularFeatures::fit(const std::vector<TraceRecord>& train) {
  MMGRAD_CHECK(train.size() >= 2, "TabularFeatures::fit: needs at least 2 rows, got ",
               train.size());
  TabularFeatures t;
  for (int k = 0; k < 3; ++k) {
    double s = 0, s2 = 0;
    for (const TraceRecord& r : train) {
      double v = k == 0 ? r.driver_rating : k == 1 ? r.car_rating : r.grid;
      s += v;
      s2 += v * v;
    }
    const double n = static_cast<double>(train.size());
    t.mean_[k] = s / n;
    t.std_[k] = std::sqrt(std::max(s2 / n - t.mean_[k] * t.mean_[k], 1e-12));
  }
  return t;
}

int64_t TabularFeatures::dim() const { return 3 + static_cast<int64_t>(circuits().size()) + 3 + 3; }

std::vector<std::string> TabularFeatures::names() const {
  std::vector<std::string> n = {"driver_rating", "car_rating", "grid"};
  for (const Circuit& c : circuits()) n.push_back("circuit=" + c.name);
  for (const std::string& w : weather_names()) n.push_back("weather=" + w);
  for (const std::string& c : compound_names()) n.push_back("compound=" + c);
  return n;
}

Tensor TabularFeatures::transform(const std::vector<TraceRecord>& records) const {
  const int64_t d = dim(), nc = static_cast<int64_t>(circuits().size());
  std::vector<float> x(records.size() * static_cast<size_t>(d), 0.0f);
  for (size_t i = 0; i < records.size(); ++i) {
    const TraceRecord& r = records[i];
    float* row = x.data() + i * static_cast<size_t>(d);
    row[0] = static_cast<float>((r.driver_rating - mean_[0]) / std_[0]);
    row[1] = static_cast<float>((r.car_rating - mean_[1]) / std_[1]);
    row[2] = static_cast<float>((r.grid - mean_[2]) / std_[2]);
    row[3 + r.circuit] = 1.0f;
    row[3 + nc + r.weather] = 1.0f;
    row[3 + nc + 3 + r.compound] = 1.0f;
  }
  return Tensor::from_vector(x, {static_cast<int64_t>(records.size()), d});
}

// ---- images ----------------------------------------------------------------------------------

std::optional<Tensor> load_trace(const std::string& path, int64_t h, int64_t w, std::string* why) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    if (why) *why = "no such file";
    return std::nullopt;
  }
  try {
    Tensor img = data::load_image(path, 1);  // [1, H, W] grey in [0, 1]
    if (img.size(1) != h || img.size(2) != w) img = data::resize_bilinear(img, h, w);
    return 1.0 - img;  // ink: the line is bright, the paper is 0
  } catch (const Error& e) {
    if (why) *why = e.what();
    return std::nullopt;
  }
}

TraceDataset::TraceDataset(std::vector<TraceRecord> records, std::string root, int64_t h, int64_t w)
    : records_(std::move(records)), root_(std::move(root)), h_(h), w_(w) {
  MMGRAD_CHECK(h > 0 && w > 0, "TraceDataset: image size must be positive, got ", h, "x", w);
}

const TraceRecord& TraceDataset::operator[](int64_t i) const {
  MMGRAD_CHECK(i >= 0 && i < size(), "TraceDataset: index ", i, " out of range [0, ", size(), ")");
  return records_[static_cast<size_t>(i)];
}

std::string TraceDataset::image_path(int64_t i) const { return root_ + "/" + (*this)[i].image; }

ImageBatch TraceDataset::load_images(const std::vector<int64_t>& indices) {
  const int64_t n = static_cast<int64_t>(indices.size());
  ImageBatch b;
  b.images = Tensor::zeros({n, 1, h_, w_});
  std::vector<float> present(static_cast<size_t>(n), 0.0f);
  float* dst = b.images.data_ptr<float>();
  for (int64_t k = 0; k < n; ++k) {
    const std::string path = image_path(indices[static_cast<size_t>(k)]);
    std::string why;
    std::optional<Tensor> img = load_trace(path, h_, w_, &why);
    if (!img) {
      if (why == "no such file") {
        missing_.insert(path);
      } else if (unreadable_.insert(path).second) {
        lesson::print("  warning: cannot read {} ({}): treated as a missing image", path, why);
      }
      continue;
    }
    ++files_read_;
    std::vector<float> v = img->to_vector<float>();
    std::copy(v.begin(), v.end(), dst + k * h_ * w_);
    present[static_cast<size_t>(k)] = 1.0f;
  }
  b.present = Tensor::from_vector(present, {n});
  return b;
}

Tensor TraceDataset::labels(const std::vector<int64_t>& indices) const {
  std::vector<int64_t> y;
  y.reserve(indices.size());
  for (int64_t i : indices) y.push_back((*this)[i].label);
  return Tensor::from_vector(y, {static_cast<int64_t>(y.size())});
}

std::vector<int64_t> indices_of_races(const std::vector<TraceRecord>& records,
                                      const std::set<std::string>& races, bool in) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < records.size(); ++i)
    if ((races.count(records[i].race) > 0) == in) out.push_back(static_cast<int64_t>(i));
  return out;
}

}  // namespace mmgrad::fusion
