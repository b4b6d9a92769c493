// Lesson 10's data source: a small race simulator and the speed-trace renderer.
//
// Each simulated race has 20 drivers on one circuit, in one kind of weather, over 50 laps. For
// every driver the simulator produces two views of the same race:
//
//   the TABLE  what is known before the lights go out: driver rating, car rating, circuit,
//              weather, starting tyre compound, grid position;
//   the TRACE  the driver's lap-by-lap average speed, drawn as a small grey PNG.
//
// The finishing position depends on things only the trace shows: how fast this driver's tyres
// wore out (the slope of each stint), how many pit stops they made (the dips), whether they spun
// or damaged the car (a deep dip and a lower line afterwards) or retired (the line stops early),
// and their race-day form (the height of the line against the dashed reference line). The table
// knows the pace the driver and car usually have and where they start. Neither view alone
// determines the result; together they get much closer. That is what makes fusion worth it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::fusion {

inline constexpr int kDriversPerRace = 20;
inline constexpr int kLaps = 50;
// The rendered PNG: one trace per file, grey, kTraceHeight x kTraceWidth pixels.
inline constexpr int kTraceHeight = 64;
inline constexpr int kTraceWidth = 128;

// The label: finishing position 1-3, 4-10 (scores points), 11-20 or retired.
enum FinishClass : int { kPodium = 0, kPoints = 1, kNoPoints = 2 };
inline constexpr int kNumClasses = 3;
const std::vector<std::string>& finish_class_names();  // "podium", "points", "no points"
int finish_class(int position);                        // 1-based position -> class

struct Circuit {
  std::string name;
  double ref_speed_kmh;  // a typical dry-race lap speed
  double overtaking;     // 0 easy .. 1 hard: how much starting further back costs
  double tyre_wear;      // multiplies every driver's degradation
};
const std::vector<Circuit>& circuits();
const std::vector<std::string>& weather_names();   // dry, mixed, wet
const std::vector<std::string>& compound_names();  // soft, medium, hard

// One driver in one race: the table row, the hidden truth the trace shows, and the outcome.
struct DriverRace {
  // ---- identity and the table (known before the race) ----
  std::string race;    // e.g. "r012_monza"
  std::string driver;  // e.g. "d07"
  int circuit = 0, weather = 0, compound = 0;
  int grid = 1;              // starting position 1..20
  double driver_rating = 0;  // a public, noisy estimate of the driver's skill (about 0..100)
  double car_rating = 0;     // the same for the car
  // ---- hidden: drawn by the simulator, visible only in the trace ----
  double form = 0;         // race-day pace offset (fraction of speed)
  double degradation = 0;  // speed lost per lap of tyre age (fraction of speed)
  int pit_stops = 0;       // stops made (a retired driver may not have made all planned stops)
  int incident = 0;        // 0 clean race, 1 spin or damage, 2 retired
  std::vector<double> lap_speed;  // km/h per completed lap (shorter than kLaps if retired)
  double ref_speed = 0;           // this race's reference speed (circuit x weather): the y axis
  // ---- the outcome ----
  double race_time = 0;  // seconds (for finishers)
  int position = 0;      // 1..20
  int label = 0;         // FinishClass
};

// Simulates races number first_race .. first_race + count - 1 of a season seeded by `seed`
// (the same race number always gives the same race). 20 rows per race, grouped by race.
std::vector<DriverRace> simulate_races(int first_race, int count, uint64_t seed);

// Draws a speed trace as an image [1, kTraceHeight, kTraceWidth] in [0, 1]: dark anti-aliased
// line on white, x = lap, y = speed on a fixed axis [0.55, 1.06] x ref_speed shared by every
// driver of a race, a dashed reference line at ref_speed, a light frame. A retired driver's
// line stops at the lap they retired.
Tensor render_trace(const std::vector<double>& lap_speed, double ref_speed);

// The pretext labels of the backbone's first training step: properties a race engineer reads
// off a trace (pit stops <=1 / 2 / 3 -> 0-2; incident 0-2; degradation tercile 0-2).
struct TraceProperties {
  int stops_class = 0;
  int incident = 0;
  int degradation_class = 0;
};
TraceProperties trace_properties(const DriverRace& d);
inline constexpr int kNumPretextOutputs = 9;  // three 3-way heads

}  // namespace mmgrad::fusion
