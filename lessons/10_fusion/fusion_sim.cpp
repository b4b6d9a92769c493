#include "10_fusion/fusion_sim.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "mmgrad/core/error.h"

namespace mmgrad::fusion {
namespace {

// A small seeded generator for the simulator (splitmix64): the same seed gives the same season
// on every machine, independent of the standard library's distributions.
class SimRng {
 public:
  explicit SimRng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int uniform_int(int lo, int hi) {                                           // [lo, hi]
    return lo + static_cast<int>(uniform() * (hi - lo + 1));
  }
  double normal() {  // Box-Muller
    double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
  bool chance(double p) { return uniform() < p; }

 private:
  uint64_t s_;
};

uint64_t mix(uint64_t a, uint64_t b) {
  SimRng r(a * 0x100000001B3ull + b);
  return r.next();
}

// ---- the physics of a lap, as fractions of the race's reference speed ----------------------
constexpr double kSkillPace = 0.008;    // one standard deviation of driver skill
constexpr double kCarPace = 0.010;      // one standard deviation of car performance
constexpr double kFormPace = 0.006;     // one standard deviation of race-day form
constexpr double kDegBase = 0.0010;     // speed lost per lap of tyre age (medium, average wear)
constexpr double kTrafficLoss = 0.03;   // first-lap loss of the last car on the hardest track
constexpr double kFuelGain = 0.0004;    // per lap: the car gets lighter
constexpr double kPitLapFactor = 0.78;  // a lap through the pit lane
constexpr double kSpinLapFactor = 0.62;
constexpr double kDamageLoss = 0.012;  // after a damaging incident
constexpr double kLapMetres = 5000.0;
const double kCompoundOffset[3] = {+0.007, 0.0, -0.005};  // soft, medium, hard: fresh-tyre pace
const double kCompoundWear[3] = {1.7, 1.0, 0.6};
const double kWeatherSpeed[3] = {1.0, 0.94, 0.87};
const double kWeatherIncident[3] = {0.10, 0.18, 0.28};
const double kWeatherNoise[3] = {0.003, 0.005, 0.007};

// The fixed y axis of every trace: speeds from 0.55 to 1.06 x the race's reference speed.
constexpr double kAxisLo = 0.55, kAxisHi = 1.06;

}  // namespace

const std::vector<std::string>& finish_class_names() {
  static const std::vector<std::string> n = {"podium", "points", "no points"};
  return n;
}

int finish_class(int position) {
  MMGRAD_CHECK(position >= 1 && position <= kDriversPerRace, "finish_class: position ", position,
               " is outside 1..", kDriversPerRace);
  return position <= 3 ? kPodium : position <= 10 ? kPoints : kNoPoints;
}

const std::vector<Circuit>& circuits() {
  static const std::vector<Circuit> c = {
      {"monza", 250, 0.3, 0.8},     {"monaco", 160, 1.0, 0.7},    {"silverstone", 235, 0.5, 1.2},
      {"spa", 230, 0.3, 1.0},       {"suzuka", 220, 0.7, 1.1},    {"bahrain", 205, 0.4, 1.4},
      {"singapore", 170, 0.9, 1.0}, {"interlagos", 210, 0.4, 0.9}};
  return c;
}

const std::vector<std::string>& weather_names() {
  static const std::vector<std::string> n = {"dry", "mixed", "wet"};
  return n;
}

const std::vector<std::string>& compound_names() {
  static const std::vector<std::string> n = {"soft", "medium", "hard"};
  return n;
}

std::vector<DriverRace> simulate_races(int first_race, int count, uint64_t seed) {
  MMGRAD_CHECK(first_race >= 0 && count >= 0,
               "simulate_races: first_race and count must be >= 0, "
               "got ",
               first_race, " and ", count);
  // The season: 20 drivers in 10 teams, each with a lasting skill / car performance.
  SimRng season(mix(seed, 0xF1));
  double skill[kDriversPerRace], car[kDriversPerRace / 2];
  for (double& s : skill) s = season.normal();
  for (double& c : car) c = season.normal();

  std::vector<DriverRace> rows;
  rows.reserve(static_cast<size_t>(count) * kDriversPerRace);
  for (int r = first_race; r < first_race + count; ++r) {
    SimRng rng(mix(seed, 1000 + static_cast<uint64_t>(r)));
    const int ci = rng.uniform_int(0, static_cast<int>(circuits().size()) - 1);
    const Circuit& circ = circuits()[ci];
    const double u = rng.uniform();
    const int weather = u < 0.65 ? 0 : u < 0.85 ? 1 : 2;
    const double ref = circ.ref_speed_kmh * kWeatherSpeed[weather];
    char race_id[64];
    std::snprintf(race_id, sizeof race_id, "r%03d_%s", r, circ.name.c_str());

    // Per driver: this race's car setup, form, tyre management, and qualifying.
    std::vector<DriverRace> race(kDriversPerRace);
    std::vector<double> pace(kDriversPerRace), quali(kDriversPerRace);
    for (int d = 0; d < kDriversPerRace; ++d) {
      DriverRace& x = race[d];
      x.race = race_id;
      char did[16];
      std::snprintf(did, sizeof did, "d%02d", d);
      x.driver = did;
      x.circuit = ci;
      x.weather = weather;
      x.ref_speed = ref;
      const double car_today = car[d / 2] + 0.3 * rng.normal();  // suits this track or not
      x.driver_rating = 75.0 + 8.0 * skill[d] + 3.0 * rng.normal();
      x.car_rating = 75.0 + 8.0 * car_today + 3.0 * rng.normal();
      x.form = kFormPace * rng.normal();
      pace[d] = kSkillPace * skill[d] + kCarPace * car_today + x.form;
      quali[d] = pace[d] + 0.004 * rng.normal();
      // Tyre management: how gently this driver treats the tyres today (hidden).
      x.degradation = kDegBase * circ.tyre_wear * std::exp(0.35 * rng.normal());
      const double v = rng.uniform();
      x.compound = v < 0.4 ? 0 : v < 0.85 ? 1 : 2;
    }
    // Grid: fastest qualifier starts first.
    std::vector<int> order(kDriversPerRace);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return quali[a] > quali[b]; });
    for (int g = 0; g < kDriversPerRace; ++g) race[order[g]].grid = g + 1;

    // The race, lap by lap.
    for (int d = 0; d < kDriversPerRace; ++d) {
      DriverRace& x = race[d];
      // Strategy: the more the tyres wear, the more stops (with some teams guessing wrong).
      const double wear = x.degradation * kCompoundWear[x.compound] / kDegBase;
      int stops = wear < 1.0 ? 1 : wear < 1.7 ? 2 : 3;
      if (rng.chance(0.2)) stops += rng.chance(0.5) ? 1 : -1;
      stops = std::clamp(stops, 1, 3);
      x.pit_stops = stops;
      std::vector<int> pit_laps;
      for (int s = 1; s <= stops; ++s)
        pit_laps.push_back(
            std::clamp(s * kLaps / (stops + 1) + rng.uniform_int(-3, 3), 2, kLaps - 3));
      // Incidents: a spin (one very slow lap, maybe damage after) or a retirement.
      int incident_lap = -1;
      bool damage = false;
      if (rng.chance(kWeatherIncident[weather])) {
        incident_lap = rng.uniform_int(3, kLaps - 3);
        if (rng.chance(0.35)) {
          x.incident = 2;
        } else {
          x.incident = 1;
          damage = rng.chance(0.5);
        }
      }
      int compound = x.compound, tyre_age = 0;
      double time = 0.0;
      const double traffic =
          kTrafficLoss * circuits()[x.circuit].overtaking * (x.grid - 1) / (kDriversPerRace - 1);
      for (int lap = 0; lap < kLaps; ++lap) {
        if (x.incident == 2 && lap == incident_lap) break;  // retired: the trace stops here
        double f = 1.0 + pace[d] + kCompoundOffset[compound] -
                   x.degradation * kCompoundWear[compound] * tyre_age + kFuelGain * lap -
                   traffic * std::exp(-lap / 6.0) + kWeatherNoise[weather] * rng.normal();
        if (lap == incident_lap) f *= kSpinLapFactor;
        if (damage && lap > incident_lap) f -= kDamageLoss;
        const bool pit = std::find(pit_laps.begin(), pit_laps.end(), lap) != pit_laps.end();
        if (pit) f *= kPitLapFactor;
        const double speed = ref * f;
        x.lap_speed.push_back(speed);
        time += kLapMetres / (speed / 3.6);
        ++tyre_age;
        if (pit) {  // fresh tyres of the other compound (two compounds must be used)
          compound = compound == 2 ? 1 : 2;
          tyre_age = 0;
        }
      }
      x.race_time = time;
      // The stops the trace shows (a driver who retired early made fewer than planned).
      x.pit_stops = static_cast<int>(std::count_if(pit_laps.begin(), pit_laps.end(), [&](int l) {
        return l < static_cast<int>(x.lap_speed.size());
      }));
    }
    // Classification: finishers by time, then retirements by laps completed.
    std::sort(order.begin(), order.end(), [&](int a, int b) {
      const DriverRace &p = race[a], &q = race[b];
      if (p.lap_speed.size() != q.lap_speed.size()) return p.lap_speed.size() > q.lap_speed.size();
      if (p.incident == 2) return p.grid < q.grid;  // both retired on the same lap
      return p.race_time < q.race_time;
    });
    for (int pos = 0; pos < kDriversPerRace; ++pos) {
      race[order[pos]].position = pos + 1;
      race[order[pos]].label = finish_class(pos + 1);
    }
    for (auto& x : race) rows.push_back(std::move(x));
  }
  return rows;
}

Tensor render_trace(const std::vector<double>& lap_speed, double ref_speed) {
  MMGRAD_CHECK(ref_speed > 0 && std::isfinite(ref_speed), "render_trace: reference speed must be ",
               "positive, got ", ref_speed);
  MMGRAD_CHECK(lap_speed.size() <= static_cast<size_t>(kLaps), "render_trace: got ",
               lap_speed.size(), " laps, at most ", kLaps, " fit the x axis");
  for (double s : lap_speed)
    MMGRAD_CHECK(std::isfinite(s) && s >= 0,
                 "render_trace: lap speeds must be finite and >= 0, "
                 "got ",
                 s);
  constexpr int H = kTraceHeight, W = kTraceWidth;
  std::vector<float> px(static_cast<size_t>(H) * W, 1.0f);  // white paper
  auto ink = [&](int y, int x, float v) {                   // darker wins
    float& p = px[static_cast<size_t>(y) * W + x];
    p = std::min(p, v);
  };
  // The plot area and its frame.
  const double x0 = 3, x1 = W - 4, y0 = 2, y1 = H - 3;
  for (int x = 1; x < W - 1; ++x) ink(1, x, 0.75f), ink(H - 2, x, 0.75f);
  for (int y = 1; y < H - 1; ++y) ink(y, 1, 0.75f), ink(y, W - 2, 0.75f);
  // Row of a speed on the fixed axis (fractional: the line is anti-aliased across rows).
  auto row_of = [&](double s) {
    double f = std::clamp(s / ref_speed, kAxisLo, kAxisHi);
    return y0 + (kAxisHi - f) / (kAxisHi - kAxisLo) * (y1 - y0);
  };
  const int ref_row = static_cast<int>(std::lround(row_of(ref_speed)));
  for (int x = 2; x < W - 2; ++x)
    if ((x / 3) % 2 == 0) ink(ref_row, x, 0.6f);  // dashed reference line
  const int n = static_cast<int>(lap_speed.size());
  if (n == 0) return Tensor::from_vector(px, {1, H, W});
  // Speed at a fractional lap t (linear between laps), and the row it is drawn at.
  auto row_at = [&](double t) {
    t = std::clamp(t, 0.0, static_cast<double>(n - 1));
    int a = static_cast<int>(std::floor(t));
    int b = std::min(a + 1, n - 1);
    double w = t - a;
    return row_of((1 - w) * lap_speed[a] + w * lap_speed[b]);
  };
  const double laps_per_px = (kLaps - 1) / (x1 - x0);
  for (int x = static_cast<int>(x0); x <= static_cast<int>(x1); ++x) {
    const double t = (x - x0) * laps_per_px;
    if (t > n - 1 + 1e-9 && !(n == 1 && x == static_cast<int>(x0))) break;  // retired
    // The segment this column covers (from half a pixel left to half a pixel right), so steep
    // drops into the pit lane draw as a connected vertical stroke.
    double ya = row_at(t - 0.5 * laps_per_px),
           yb = row_at(std::min(t + 0.5 * laps_per_px, static_cast<double>(n - 1)));
    double lo = std::min(ya, yb), hi = std::max(ya, yb);
    for (int y = std::max(0, static_cast<int>(lo) - 2);
         y <= std::min(H - 1, static_cast<int>(hi) + 2); ++y) {
      double dist = y < lo ? lo - y : y > hi ? y - hi : 0.0;
      double cover = std::clamp(1.2 - dist, 0.0, 1.0);  // a ~2 px wide soft pen
      if (cover > 0) ink(y, x, static_cast<float>(1.0 - 0.9 * cover));
    }
  }
  return Tensor::from_vector(px, {1, H, W});
}

TraceProperties trace_properties(const DriverRace& d) {
  TraceProperties p;
  p.stops_class = std::clamp(d.pit_stops, 1, 3) - 1;  // at most 1 (retired early) / 2 / 3
  p.incident = d.incident;
  // Terciles of the simulator's degradation distribution (kDegBase x track wear x
  // exp(0.35 N(0, 1))), measured over many races.
  const double deg = d.degradation / kDegBase;
  p.degradation_class = deg < 0.85 ? 0 : deg < 1.17 ? 1 : 2;
  return p;
}

}  // namespace mmgrad::fusion
