// data/audio.h: WAV files, the real FFT against a direct DFT, the STFT against frames cut by
// hand, the mel filterbank, the log-mel spectrogram, and the errors for bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <cstdio>
#include <fstream>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "core_test_util.h"
#include "file_test_util.h"
#include "mmgrad/data/audio.h"

using namespace mmgrad;
using mmgrad::testing::read_text;

namespace {

template <class T>
std::vector<T> random_signal(size_t n, uint64_t seed) {
  // Uniform in [-1, 1) from the 53 high bits of mt19937_64 (its output is fixed by the standard).
  std::mt19937_64 g(seed);
  std::vector<T> x(n);
  for (size_t i = 0; i < n; ++i)
    x[i] = static_cast<T>(static_cast<double>(g() >> 11) * 0x1p-52 - 1.0);
  return x;
}

// Largest |a_k - b_k| relative to the largest |b_k| (at least 1).
template <class T>
double max_rel_diff(const std::vector<std::complex<T>>& a, const std::vector<std::complex<T>>& b) {
  REQUIRE(a.size() == b.size());
  double err = 0, scale = 1;
  for (size_t k = 0; k < a.size(); ++k) {
    err = std::max(err, std::abs(std::complex<double>(a[k]) - std::complex<double>(b[k])));
    scale = std::max(scale, std::abs(std::complex<double>(b[k])));
  }
  return err / scale;
}

std::string tmp_path(const std::string& name) {
  const char* t = std::getenv("TMPDIR");
  return std::string(t ? t : "/tmp") + "/mmgrad_test_audio_" + name;
}

void write_string_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return (a.to(kFloat64) - b.to(kFloat64)).abs().max().item();
}

}  // namespace

TEST_CASE("rfft matches the direct DFT on random input, float64 and float32") {
  // Powers of two from 4 take the packed half-size FFT (4: one butterfly pass; 1024: ten, the
  // rounding bound grows with log2 n); 1, 2 and the others (odd, prime 7 and 97, even 12 and 100)
  // the DFT fallback (still checked). The reference costs n^2 / 2 long-double sines and cosines:
  // 4096 alone took 94% of this test's time and takes no code path that 1024 does not.
  for (size_t n : {1u, 2u, 3u, 4u, 7u, 8u, 9u, 12u, 16u, 64u, 97u, 100u, 256u, 1024u}) {
    INFO("n = " << n);
    const std::vector<double> x = random_signal<double>(n, 7 + n);
    const auto ref = audio::dft(x);
    const auto got = audio::rfft(x);
    CHECK(got.size() == n / 2 + 1);
    CHECK(max_rel_diff(got, ref) < 1e-13 * std::max(1.0, std::log2(static_cast<double>(n))));
    const std::vector<float> xf = random_signal<float>(n, 7 + n);
    const auto reff = audio::dft(xf);  // accumulated in long double: the exact answer in float
    const auto gotf = audio::rfft(xf);
    CHECK(max_rel_diff(gotf, reff) < 2e-6 * std::max(1.0, std::log2(static_cast<double>(n))));
  }
}

TEST_CASE("rfft of known signals: impulse, constant, a cosine on a bin, NaN propagates") {
  std::vector<double> impulse(16, 0.0);
  impulse[0] = 1.0;
  for (auto v : audio::rfft(impulse)) CHECK(std::abs(v - std::complex<double>(1, 0)) < 1e-15);
  std::vector<double> ones(8, 1.0);
  auto c = audio::rfft(ones);
  CHECK(std::abs(c[0] - std::complex<double>(8, 0)) < 1e-14);
  for (size_t k = 1; k < c.size(); ++k) CHECK(std::abs(c[k]) < 1e-14);
  // cos(2 pi 3 t / 32): all its energy in bin 3, X_3 = n / 2.
  std::vector<double> cosine(32);
  for (size_t t = 0; t < 32; ++t) cosine[t] = std::cos(2 * std::numbers::pi * 3 * t / 32.0);
  auto X = audio::rfft(cosine);
  for (size_t k = 0; k < X.size(); ++k)
    CHECK(std::abs(X[k] - std::complex<double>(k == 3 ? 16.0 : 0.0, 0)) < 1e-12);
  std::vector<double> nan_in(8, 0.0);
  nan_in[5] = std::nan("");
  for (auto v : audio::rfft(nan_in)) CHECK(std::isnan(v.real()));
  CHECK_THROWS_WITH_AS(audio::rfft(std::vector<double>{}), doctest::Contains("rfft: empty"), Error);
  std::vector<std::complex<double>> bad(6);
  CHECK_THROWS_WITH_AS(audio::fft_inplace(bad), doctest::Contains("not a power of two"), Error);
}

TEST_CASE("hann_window is torch.hann_window (periodic and symmetric)") {
  auto p = audio::hann_window(4);
  std::vector<double> want = {0.0, 0.5, 1.0, 0.5};
  for (size_t i = 0; i < 4; ++i) CHECK(p[i] == doctest::Approx(want[i]).epsilon(1e-15));
  auto s = audio::hann_window(5, false);
  std::vector<double> want_s = {0.0, 0.5, 1.0, 0.5, 0.0};
  for (size_t i = 0; i < 5; ++i) CHECK(std::abs(s[i] - want_s[i]) < 1e-15);
  CHECK(audio::hann_window(1) == std::vector<double>{1.0});
  CHECK(audio::hann_window(0).empty());
}

TEST_CASE("stft_power equals frames cut, reflected and windowed by hand") {
  const int64_t L = 50;
  const std::vector<double> x = random_signal<double>(L, 3);
  for (bool center : {true, false}) {
    for (int64_t win : {16, 10}) {
      INFO("center " << center << " win " << win);
      audio::StftOptions o;
      o.n_fft = 16;
      o.hop_length = 5;
      o.win_length = win;
      o.center = center;
      Tensor spec = audio::stft_power(Tensor::from_vector(x, {L}), o);
      const int64_t frames = center ? 1 + L / 5 : 1 + (L - 16) / 5;
      REQUIRE(spec.shape() == Shape({9, frames}));
      CHECK(audio::stft_frames(L, o) == frames);
      // By hand: numpy-style reflection x[-j] = x[j], x[L-1+j] = x[L-1-j]; window zero-padded.
      std::vector<double> padded;
      const int64_t pad = center ? 8 : 0;
      for (int64_t i = -pad; i < L + pad; ++i)
        padded.push_back(x[i < 0 ? -i : (i >= L ? 2 * (L - 1) - i : i)]);
      std::vector<double> w(16, 0.0);
      auto hw = audio::hann_window(win);
      for (int64_t i = 0; i < win; ++i) w[(16 - win) / 2 + i] = hw[i];
      const double* s = spec.data_ptr<double>();
      double worst = 0;
      for (int64_t t = 0; t < frames; ++t) {
        std::vector<double> frame(16);
        for (int64_t i = 0; i < 16; ++i) frame[i] = padded[t * 5 + i] * w[i];
        auto X = audio::dft(frame);
        for (int64_t k = 0; k < 9; ++k)
          worst = std::max(worst, std::abs(s[k * frames + t] - std::norm(X[k])));
      }
      CHECK(worst < 1e-12);
    }
  }
  // A batch gives each row its own spectrogram; float32 in gives float32 out, equal to the
  // float64 result rounded.
  Tensor two = Tensor::from_vector(random_signal<double>(2 * 40, 11), {2, 40});
  audio::StftOptions o;
  o.n_fft = 8;
  Tensor b = audio::stft_power(two, o);
  CHECK(b.shape() == Shape({2, 5, 21}));
  Tensor row1 = audio::stft_power(two.select(0, 1).contiguous(), o);
  CHECK(max_abs_diff(b.select(0, 1), row1) == 0.0);
  Tensor f32 = audio::stft_power(two.to(kFloat32), o);
  CHECK(f32.dtype() == kFloat32);
  CHECK(max_abs_diff(f32.to(kFloat64), b) < 1e-5 * (1 + b.abs().max().item()));
}

TEST_CASE("stft_power: a pure tone lands in its bin") {
  const int64_t sr = 8000, L = 4000;
  std::vector<float> x(L);
  for (int64_t t = 0; t < L; ++t)
    x[t] = static_cast<float>(std::sin(2 * std::numbers::pi * 1000.0 * t / sr));
  audio::StftOptions o;
  o.n_fft = 256;
  o.hop_length = 128;
  Tensor spec = audio::stft_power(Tensor::from_vector(x, {L}), o);
  // Bin k is k * 8000 / 256 = 31.25 k Hz: 1000 Hz is bin 32.
  Tensor peak = spec.select(1, 10).argmax(0);
  CHECK(peak.item() == 32);
}

TEST_CASE("mel scales: HTK and Slaney formulas and their inverses") {
  CHECK(audio::hz_to_mel(700.0) == doctest::Approx(2595.0 * std::log10(2.0)));
  CHECK(audio::hz_to_mel(0.0) == 0.0);
  CHECK(audio::hz_to_mel(500.0, audio::MelScale::Slaney) == doctest::Approx(7.5));
  CHECK(audio::hz_to_mel(1000.0, audio::MelScale::Slaney) == doctest::Approx(15.0));
  CHECK(audio::hz_to_mel(6400.0, audio::MelScale::Slaney) == doctest::Approx(42.0));
  for (auto s : {audio::MelScale::HTK, audio::MelScale::Slaney})
    for (double f : {20.0, 440.0, 999.0, 1000.0, 3999.0})
      CHECK(audio::mel_to_hz(audio::hz_to_mel(f, s), s) == doctest::Approx(f).epsilon(1e-12));
}

TEST_CASE("mel_filterbank: triangles on the mel grid, torchaudio's layout") {
  // A case small enough to compute by hand with the HTK scale: sr 1600 Hz, 9 bins 100 Hz apart,
  // 2 mels from 0 to 800 Hz: mel points at 0, m/3, 2m/3, m (m = mel(800)).
  Tensor fb = audio::mel_filterbank(9, 0.0, 800.0, 2, 1600);
  REQUIRE(fb.shape() == Shape({9, 2}));
  const double m = audio::hz_to_mel(800.0);
  const double f1 = audio::mel_to_hz(m / 3), f2 = audio::mel_to_hz(2 * m / 3);
  for (int64_t k = 0; k < 9; ++k) {
    const double f = 100.0 * k;
    const double want0 = std::max(0.0, std::min(f / f1, (f2 - f) / (f2 - f1)));
    const double want1 = std::max(0.0, std::min((f - f1) / (f2 - f1), (800.0 - f) / (800.0 - f2)));
    CHECK(fb.select(0, k).select(0, 0).item() == doctest::Approx(want0).epsilon(1e-6));
    CHECK(fb.select(0, k).select(0, 1).item() == doctest::Approx(want1).epsilon(1e-6));
  }
  // The lesson's setting: every value in [0, 1], every filter non-empty.
  Tensor big = audio::mel_filterbank(129, 60.0, 4000.0, 32, 8000, audio::MelScale::Slaney);
  CHECK(big.min().item() >= 0.0);
  CHECK(big.max().item() <= 1.0);
  CHECK(big.sum({0}).min().item() > 0.0);
  // Too many mels for the bins: a filter would see nothing.
  CHECK_THROWS_WITH_AS(audio::mel_filterbank(9, 0.0, 800.0, 40, 1600),
                       doctest::Contains("mel_filterbank: mel filter"), Error);
  CHECK_THROWS_WITH_AS(audio::mel_filterbank(9, 500.0, 100.0, 2, 1600),
                       doctest::Contains("mel_filterbank: frequency range"), Error);
  CHECK_THROWS_WITH_AS(audio::mel_filterbank(9, 0.0, 900.0, 2, 1600),
                       doctest::Contains("sample_rate / 2"), Error);
}

TEST_CASE("log_mel_spectrogram: shape, a tone in its band, the top_db floor") {
  const int64_t sr = 8000, L = 4000;
  std::vector<float> x(2 * L, 0.0f);
  for (int64_t t = 0; t < L; ++t) {
    x[t] = static_cast<float>(0.5 * std::sin(2 * std::numbers::pi * 300.0 * t / sr));
    x[L + t] = static_cast<float>(0.5 * std::sin(2 * std::numbers::pi * 2500.0 * t / sr));
  }
  audio::LogMelOptions o;
  o.sample_rate = sr;
  o.stft.n_fft = 256;
  o.stft.hop_length = 128;
  o.n_mels = 32;
  o.f_min = 60;
  Tensor lm = audio::log_mel_spectrogram(Tensor::from_vector(x, {2, L}), o);
  REQUIRE(lm.shape() == Shape({2, 32, 32}));
  CHECK(lm.dtype() == kFloat32);
  // The band whose centre frequency is nearest the tone is the loudest one.
  auto loudest = [&](int64_t b) { return lm.select(0, b).select(1, 16).argmax(0).item(); };
  auto centre = [&](int64_t band) {
    const double lo = audio::hz_to_mel(60.0), hi = audio::hz_to_mel(4000.0);
    return audio::mel_to_hz(lo + (hi - lo) * (band + 1) / 33.0);
  };
  const auto b0 = static_cast<int64_t>(loudest(0)), b1 = static_cast<int64_t>(loudest(1));
  CHECK(std::abs(centre(b0) - 300.0) < 60.0);
  CHECK(std::abs(centre(b1) - 2500.0) < 250.0);
  CHECK(b1 > b0);
  // top_db = 80: nothing more than 80 dB below each waveform's loudest value.
  for (int64_t b = 0; b < 2; ++b) {
    Tensor s = lm.select(0, b);
    CHECK(s.max().item() - s.min().item() <= 80.0 + 1e-3);
  }
  // Silence: 10 log10(amin) = -100 dB everywhere (the floor is relative, so it stays there).
  Tensor quiet = audio::log_mel_spectrogram(Tensor::zeros({L}), o);
  CHECK(quiet.shape() == Shape({32, 32}));
  CHECK(quiet.max().item() == doctest::Approx(-100.0));
  CHECK(quiet.min().item() == doctest::Approx(-100.0));
}

TEST_CASE("stft and log_mel_spectrogram reject bad input with the op's name") {
  audio::LogMelOptions o;
  Tensor ok = Tensor::zeros({2, 1000});
  // n_fft 256, center: needs more than 128 samples.
  CHECK_THROWS_WITH_AS(
      audio::log_mel_spectrogram(Tensor::zeros({2, 100}), o),
      doctest::Contains("log_mel_spectrogram: a signal of 100 samples is too short"), Error);
  audio::StftOptions s;
  s.center = false;
  CHECK_THROWS_WITH_AS(audio::stft_power(Tensor::zeros({200}), s),
                       doctest::Contains("stft: a signal of 200 samples is shorter than n_fft"),
                       Error);
  CHECK_THROWS_WITH_AS(audio::stft_power(Tensor::zeros({2, 0}), audio::StftOptions{}),
                       doctest::Contains("stft: empty signal"), Error);
  CHECK_THROWS_WITH_AS(audio::log_mel_spectrogram(Tensor::zeros({0}), o),
                       doctest::Contains("log_mel_spectrogram: empty signal"), Error);
  Tensor bad = Tensor::zeros({2, 1000});
  bad.data_ptr<float>()[1500] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(audio::log_mel_spectrogram(bad, o),
                       doctest::Contains("log_mel_spectrogram: waveform 1 has a non-finite sample"),
                       Error);
  audio::StftOptions h;
  h.hop_length = 0;
  CHECK_THROWS_WITH_AS(audio::stft_power(ok, h), doctest::Contains("stft: hop_length 0"), Error);
  audio::StftOptions w;
  w.win_length = 300;
  CHECK_THROWS_WITH_AS(audio::stft_power(ok, w), doctest::Contains("stft: win_length 300"), Error);
  CHECK_THROWS_WITH_AS(audio::stft_power(Tensor::zeros({2, 3, 100}), w),
                       doctest::Contains("stft: expects waveforms [L] or [B, L]"), Error);
  CHECK_THROWS_WITH_AS(audio::stft_power(Tensor::zeros({1000}, kInt64), audio::StftOptions{}),
                       doctest::Contains("stft: expects float32 or float64"), Error);
  audio::LogMelOptions many = o;
  many.n_mels = 200;
  CHECK_THROWS_WITH_AS(audio::log_mel_spectrogram(ok, many),
                       doctest::Contains("log_mel_spectrogram: mel filter"), Error);
}

TEST_CASE("WAV: write, read back, header fields, stereo and extra chunks") {
  const std::string path = tmp_path("roundtrip.wav");
  std::vector<float> x = {0.0f, 0.5f, -0.5f, 1.0f, -1.0f, 2.0f, 0.25f};
  audio::write_wav(path, x, 8000);
  const std::string bytes = read_text(path);
  CHECK(bytes.size() == 44 + 2 * x.size());
  CHECK(bytes.substr(0, 4) == "RIFF");
  CHECK(bytes.substr(8, 8) == "WAVEfmt ");
  audio::Wav w = audio::read_wav(path);
  CHECK(w.sample_rate == 8000);
  CHECK(w.channels == 1);
  REQUIRE(w.samples.size() == x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::clamp(static_cast<double>(x[i]), -1.0, 1.0);  // 2.0 is clipped
    CHECK(std::abs(w.samples[i] - want) <= 1.0 / 32767 + 1e-7);
  }
  // A stereo file with a LIST chunk of odd size (padded) before "data": 2 frames.
  std::string s = audio::encode_wav({0.1f, -0.2f, 0.3f, -0.4f}, 16000);
  std::string hdr = s.substr(0, 36), data = s.substr(36);
  hdr[22] = 2;  // channels
  std::string list = std::string("LIST") + std::string("\x03\x00\x00\x00", 4) + "abc" + '\0';
  std::string stereo = hdr + list + data;
  audio::Wav st = audio::decode_wav(stereo.data(), stereo.size());
  CHECK(st.channels == 2);
  CHECK(st.frames() == 2);
  CHECK(st.samples[3] == doctest::Approx(-0.4).epsilon(1e-3));
}

TEST_CASE("WAV: truncated, corrupt and unsupported files are clear errors naming read_wav") {
  const std::string good = audio::encode_wav(std::vector<float>(100, 0.25f), 8000);
  const std::string path = tmp_path("bad.wav");
  auto fails_with = [&](const std::string& bytes, const char* what) {
    write_string_bytes(path, bytes);
    INFO(std::string(what));
    CHECK_THROWS_WITH_AS(audio::read_wav(path), doctest::Contains(what), Error);
    CHECK_THROWS_WITH_AS(audio::read_wav(path), doctest::Contains(("read_wav: '" + path).c_str()),
                         Error);
  };
  fails_with(good.substr(0, 44 + 150), "is truncated: its \"data\" chunk declares 200 bytes");
  fails_with(good.substr(0, 30), "is truncated: chunk \"fmt \"");
  fails_with(good.substr(0, 16), "before its \"fmt \" chunk");
  fails_with(good.substr(0, 36), "before its \"data\" chunk");
  fails_with(good.substr(0, 8), "is not a WAV file");
  fails_with("", "is not a WAV file");
  std::string eight = good;
  eight[34] = 8;  // bits per sample
  fails_with(eight, "only 16-bit integer PCM");
  std::string flt = good;
  flt[20] = 3;  // IEEE float format
  fails_with(flt, "stores format 3");
  std::string odd = good;
  odd[40] = static_cast<char>(199);  // data size no longer a whole number of frames
  fails_with(odd, "not a whole number of 2-byte frames");
  std::string nochan = good;
  nochan[22] = 0;
  fails_with(nochan, "has 0 channels");
  CHECK_THROWS_WITH_AS(audio::read_wav(tmp_path("no_such_file.wav")),
                       doctest::Contains("read_wav: cannot open"), Error);
  CHECK_THROWS_WITH_AS(audio::write_wav(path, {0.0f, std::nanf("")}, 8000),
                       doctest::Contains("write_wav: sample 1 is nan"), Error);
  CHECK_THROWS_WITH_AS(audio::write_wav(path, {0.0f}, 0),
                       doctest::Contains("write_wav: sample rate 0"), Error);
  std::remove(path.c_str());
}
