// WAV files, the FFT, the STFT and log-mel spectrograms (data/audio.h has the math).
#include "mmgrad/data/audio.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numbers>

#include "mmgrad/core/error.h"
#include "mmgrad/core/file_util.h"
#include "mmgrad/core/op_scope.h"

namespace mmgrad::audio {

namespace {

// ---- little-endian bytes
// --------------------------------------------------------------------------

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_u16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v & 0xFF));
  s.push_back(static_cast<char>(v >> 8));
}
uint32_t get_u32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint16_t get_u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

void check_sample_rate(const char* op, int64_t sample_rate) {
  MMGRAD_CHECK(sample_rate >= 1 && sample_rate <= kMaxSampleRate, op, ": sample rate ", sample_rate,
               " Hz is outside [1, ", kMaxSampleRate, "]");
}

}  // namespace

// ---- WAV ----------------------------------------------------------------------------------------

std::string encode_wav(const std::vector<float>& samples, int64_t sample_rate) {
  const char* op = op_name_or("encode_wav");
  check_sample_rate(op, sample_rate);
  // The RIFF sizes are 32-bit: 2 bytes per sample plus the 36 header bytes after "RIFF" <size>.
  MMGRAD_CHECK(samples.size() <= (0xFFFFFFFFull - 36) / 2, op, ": ", samples.size(),
               " samples do not fit a WAV file (at most ", (0xFFFFFFFFull - 36) / 2, ")");
  const uint32_t data_bytes = static_cast<uint32_t>(samples.size() * 2);
  std::string s;
  s.reserve(44 + data_bytes);
  s += "RIFF";
  put_u32(s, 36 + data_bytes);
  s += "WAVEfmt ";
  put_u32(s, 16);                                      // fmt chunk size
  put_u16(s, 1);                                       // PCM
  put_u16(s, 1);                                       // mono
  put_u32(s, static_cast<uint32_t>(sample_rate));      // frames per second
  put_u32(s, static_cast<uint32_t>(sample_rate * 2));  // bytes per second
  put_u16(s, 2);                                       // bytes per frame
  put_u16(s, 16);                                      // bits per sample
  s += "data";
  put_u32(s, data_bytes);
  for (size_t i = 0; i < samples.size(); ++i) {
    const float x = samples[i];
    MMGRAD_CHECK(std::isfinite(x), op, ": sample ", i, " is ", x, "; expected finite values");
    const double c = std::clamp(static_cast<double>(x), -1.0, 1.0);
    const auto v = static_cast<int16_t>(std::lround(c * 32767.0));
    put_u16(s, static_cast<uint16_t>(v));
  }
  return s;
}

void write_wav(const std::string& path, const std::vector<float>& samples, int64_t sample_rate) {
  OpScope scope("write_wav");
  const std::string bytes = encode_wav(samples, sample_rate);
  write_file_atomic(path, bytes, "write_wav");
}

Wav decode_wav(const void* data, size_t size, const std::string& name) {
  const char* op = op_name_or("decode_wav");
  const auto* p = static_cast<const unsigned char*>(data);
  MMGRAD_CHECK(data != nullptr || size == 0, op, ": '", name, "': null data");
  MMGRAD_CHECK(size >= 12 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WAVE", 4) == 0,
               op, ": '", name, "' is not a WAV file (expected \"RIFF\" <size> \"WAVE\" in the ",
               "first 12 bytes; the file has ", size, " bytes)");
  Wav w;
  bool have_fmt = false;
  int64_t bits = 0;
  size_t pos = 12;
  while (true) {
    MMGRAD_CHECK(size - pos >= 8, op, ": '", name, "' ends at byte ", size,
                 (have_fmt ? " before its \"data\" chunk" : " before its \"fmt \" chunk"),
                 " (truncated or not a PCM WAV file)");
    const unsigned char* c = p + pos;
    const uint64_t len = get_u32(c + 4);
    const size_t body = pos + 8;
    const std::string id(reinterpret_cast<const char*>(c), 4);
    if (id == "data") {
      MMGRAD_CHECK(have_fmt, op, ": '", name, "': \"data\" chunk before the \"fmt \" chunk");
      MMGRAD_CHECK(len <= size - body, op, ": '", name, "' is truncated: its \"data\" chunk ",
                   "declares ", len, " bytes but only ", size - body, " follow");
      const uint64_t frame_bytes = static_cast<uint64_t>(w.channels) * 2;
      MMGRAD_CHECK(len % frame_bytes == 0, op, ": '", name, "': \"data\" chunk of ", len,
                   " bytes is not a whole number of ", frame_bytes, "-byte frames (", w.channels,
                   " channel(s) x 16 bits): truncated or corrupt");
      w.samples.resize(len / 2);
      for (size_t i = 0; i < w.samples.size(); ++i)
        w.samples[i] =
            static_cast<float>(static_cast<int16_t>(get_u16(p + body + 2 * i))) / 32768.0f;
      return w;
    }
    MMGRAD_CHECK(len <= size - body, op, ": '", name, "' is truncated: chunk \"", id, "\" at byte ",
                 pos, " declares ", len, " bytes but only ", size - body, " follow");
    if (id == "fmt ") {
      MMGRAD_CHECK(len >= 16, op, ": '", name, "': \"fmt \" chunk of ", len,
                   " bytes; expected at least 16");
      const unsigned char* f = p + body;
      const int64_t format = get_u16(f);
      w.channels = get_u16(f + 2);
      w.sample_rate = get_u32(f + 4);
      bits = get_u16(f + 14);
      // WAVE_FORMAT_EXTENSIBLE (0xFFFE) with the PCM sub-format is plain PCM too.
      const bool pcm = format == 1 || (format == 0xFFFE && len >= 26 && get_u16(f + 24) == 1);
      MMGRAD_CHECK(pcm && bits == 16, op, ": '", name, "' stores format ", format, " with ", bits,
                   " bits per sample; only 16-bit integer PCM (format 1) is read");
      MMGRAD_CHECK(w.channels >= 1 && w.channels <= kMaxChannels, op, ": '", name, "' has ",
                   w.channels, " channels; expected 1 to ", kMaxChannels);
      check_sample_rate(op, w.sample_rate);
      have_fmt = true;
    }
    // Chunks are padded to an even number of bytes; the pad byte may be missing at the very end.
    pos = body + static_cast<size_t>(len) + (len & 1);
    if (pos > size) pos = size;
  }
}

Wav read_wav(const std::string& path) {
  const char* op = "read_wav";
  OpScope scope(op);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  MMGRAD_CHECK(f != nullptr, op, ": cannot open '", path, "'");
  std::string bytes;
  char chunk[1 << 16];
  for (size_t n; (n = std::fread(chunk, 1, sizeof(chunk), f)) > 0;) bytes.append(chunk, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  MMGRAD_CHECK(!failed, op, ": error while reading '", path, "'");
  return decode_wav(bytes.data(), bytes.size(), path);
}

// ---- Fourier transforms -----------------------------------------------------------------------

namespace {
// e^{-2 pi i k / n} for k < n / 2 (at least one entry), computed in double and rounded once to
// T, for k < n / 2 + 1 (so rfft's untangling finds k = n / 2 too). Cached per thread for the last n
// asked in each of two slots (0: fft_inplace, 1: rfft), since a spectrogram asks for the same
// sizes thousands of times.
template <class T>
const std::vector<std::complex<T>>& twiddles(size_t n, int slot) {
  thread_local std::vector<std::complex<T>> w[2];
  thread_local size_t cached[2] = {0, 0};
  if (cached[slot] != n) {
    w[slot].resize(n / 2 + 1);
    for (size_t k = 0; k < w[slot].size(); ++k) {
      const double a = -2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(n);
      w[slot][k] = {static_cast<T>(std::cos(a)), static_cast<T>(std::sin(a))};
    }
    cached[slot] = n;
  }
  return w[slot];
}
}  // namespace

template <class T>
std::vector<std::complex<T>> dft(const std::vector<T>& x) {
  MMGRAD_CHECK(!x.empty(), op_name_or("dft"), ": empty input; expected at least one sample");
  const size_t n = x.size();
  std::vector<std::complex<T>> out(n / 2 + 1);
  for (size_t k = 0; k < out.size(); ++k) {
    long double re = 0, im = 0;
    for (size_t t = 0; t < n; ++t) {
      // (k t) mod n keeps the angle small, so cos/sin stay accurate for large k t.
      const long double a = 2.0L * std::numbers::pi_v<long double> *
                            static_cast<long double>((k * t) % n) / static_cast<long double>(n);
      re += static_cast<long double>(x[t]) * std::cos(a);
      im -= static_cast<long double>(x[t]) * std::sin(a);
    }
    out[k] = {static_cast<T>(re), static_cast<T>(im)};
  }
  return out;
}

template <class T>
void fft_inplace(std::vector<std::complex<T>>& x) {
  const size_t n = x.size();
  MMGRAD_CHECK(n >= 1 && (n & (n - 1)) == 0, op_name_or("fft_inplace"), ": length ", n,
               " is not a power of two");
  // Bit-reversal permutation: after it, the butterflies can combine neighbours in place.
  for (size_t i = 1, j = 0; i < n; ++i) {
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(x[i], x[j]);
  }
  // Pass with blocks of `len`: X = E + w^k O and X' = E - w^k O for the two halves' spectra,
  // w = e^{-2 pi i / len}. The twiddles of the largest block serve every pass: w_len^k is
  // w_n^{k n / len}.
  const std::vector<std::complex<T>>& w = twiddles<T>(n, 0);
  for (size_t len = 2; len <= n; len <<= 1) {
    const size_t half = len / 2, stride = n / len;
    for (size_t i = 0; i < n; i += len)
      for (size_t k = 0; k < half; ++k) {
        const std::complex<T> e = x[i + k], o = w[k * stride] * x[i + k + half];
        x[i + k] = e + o;
        x[i + k + half] = e - o;
      }
  }
}

template <class T>
std::vector<std::complex<T>> rfft(const std::vector<T>& x) {
  const char* op = op_name_or("rfft");
  MMGRAD_CHECK(!x.empty(), op, ": empty input; expected at least one sample");
  const size_t n = x.size();
  if (n < 4 || (n & (n - 1)) != 0) return dft(x);
  const size_t m = n / 2;
  std::vector<std::complex<T>> z(m);
  for (size_t t = 0; t < m; ++t) z[t] = {x[2 * t], x[2 * t + 1]};
  fft_inplace(z);
  std::vector<std::complex<T>> out(m + 1);
  const std::complex<T> half_i(0, T(0.5));
  const std::vector<std::complex<T>>& wn = twiddles<T>(n, 1);  // e^{-2 pi i k / n}
  for (size_t k = 0; k <= m; ++k) {
    const std::complex<T> zk = z[k % m], zc = std::conj(z[(m - k) % m]);
    const std::complex<T> e = T(0.5) * (zk + zc);   // spectrum of the even samples
    const std::complex<T> o = -half_i * (zk - zc);  // spectrum of the odd samples
    out[k] = e + wn[k] * o;
  }
  return out;
}

template std::vector<std::complex<float>> dft(const std::vector<float>&);
template std::vector<std::complex<double>> dft(const std::vector<double>&);
template void fft_inplace(std::vector<std::complex<float>>&);
template void fft_inplace(std::vector<std::complex<double>>&);
template std::vector<std::complex<float>> rfft(const std::vector<float>&);
template std::vector<std::complex<double>> rfft(const std::vector<double>&);

// ---- STFT
// -----------------------------------------------------------------------------------------

std::vector<double> hann_window(int64_t n, bool periodic) {
  MMGRAD_CHECK(n >= 0, op_name_or("hann_window"), ": length ", n, " is negative");
  std::vector<double> w(static_cast<size_t>(n));
  if (n == 1) w[0] = 1.0;
  if (n <= 1) return w;
  const double N = static_cast<double>(periodic ? n : n - 1);
  for (int64_t t = 0; t < n; ++t)
    w[t] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(t) / N);
  return w;
}

std::string StftOptions::str() const {
  return "n_fft=" + std::to_string(n_fft) +
         " hop=" + std::to_string(hop_length < 0 ? n_fft / 4 : hop_length) +
         " win=" + std::to_string(win_length < 0 ? n_fft : win_length) +
         " center=" + std::to_string(center ? 1 : 0);
}

namespace {

struct Framing {
  int64_t n_fft, hop, win, pad, frames;
};

Framing check_framing(const char* op, int64_t length, const StftOptions& o) {
  Framing f{};
  f.n_fft = o.n_fft;
  MMGRAD_CHECK(o.n_fft >= 1 && o.n_fft <= (int64_t{1} << 24), op, ": n_fft ", o.n_fft,
               " is outside [1, 2^24]");
  f.hop = o.hop_length < 0 ? std::max<int64_t>(1, o.n_fft / 4) : o.hop_length;
  f.win = o.win_length < 0 ? o.n_fft : o.win_length;
  MMGRAD_CHECK(f.hop >= 1, op, ": hop_length ", o.hop_length, "; expected >= 1 (or -1)");
  MMGRAD_CHECK(f.win >= 1 && f.win <= o.n_fft, op, ": win_length ", f.win,
               " must be in [1, n_fft = ", o.n_fft, "]");
  MMGRAD_CHECK(length >= 1, op, ": empty signal (0 samples)");
  f.pad = o.center ? o.n_fft / 2 : 0;
  if (o.center) {
    MMGRAD_CHECK(length > f.pad, op, ": a signal of ", length, " samples is too short for ",
                 "n_fft = ", o.n_fft, " with center=true (reflection padding of ", f.pad,
                 " needs more than ", f.pad, " samples)");
  } else {
    MMGRAD_CHECK(length >= o.n_fft, op, ": a signal of ", length, " samples is shorter than ",
                 "n_fft = ", o.n_fft, " (center=false needs at least one whole frame)");
  }
  f.frames = 1 + (length + 2 * f.pad - o.n_fft) / f.hop;
  return f;
}

// Waveforms [B, L] or [L] as float64 rows on the CPU, checked finite.
std::vector<double> waveform_rows(const char* op, const Tensor& w, int64_t& batch, int64_t& len) {
  MMGRAD_CHECK(w.defined(), op, ": undefined waveform tensor");
  MMGRAD_CHECK(w.dim() == 1 || w.dim() == 2, op, ": expects waveforms [L] or [B, L], got shape ",
               w.shape_str());
  MMGRAD_CHECK(w.is_floating_point(), op, ": expects float32 or float64 waveforms, got ",
               dtype_name(w.dtype()));
  batch = w.dim() == 2 ? w.size(0) : 1;
  len = w.size(w.dim() - 1);
  MMGRAD_CHECK(batch >= 1, op, ": empty batch (shape ", w.shape_str(), ")");
  MMGRAD_CHECK(len >= 1, op, ": empty signal (shape ", w.shape_str(), ")");
  Tensor c = w.cpu().to(kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  std::vector<double> v(p, p + batch * len);
  for (size_t i = 0; i < v.size(); ++i)
    MMGRAD_CHECK(std::isfinite(v[i]), op, ": waveform ", static_cast<int64_t>(i) / len,
                 " has a non-finite sample (", v[i], ") at index ", static_cast<int64_t>(i) % len,
                 "; expected finite values");
  return v;
}

// Power spectrogram of one signal into out[freq * frames + t].
void power_of_one(const double* x, int64_t len, const Framing& f, const std::vector<double>& window,
                  double* out) {
  const int64_t nf = f.n_fft / 2 + 1;
  std::vector<double> frame(static_cast<size_t>(f.n_fft));
  for (int64_t t = 0; t < f.frames; ++t) {
    for (int64_t i = 0; i < f.n_fft; ++i) {
      // Position in the original signal; reflection at the ends (x[-1] = x[1], as numpy "reflect").
      int64_t s = t * f.hop + i - f.pad;
      if (s < 0) s = -s;
      if (s >= len) s = 2 * (len - 1) - s;
      frame[i] = x[s] * window[i];
    }
    const std::vector<std::complex<double>> X = rfft(frame);
    for (int64_t k = 0; k < nf; ++k) out[k * f.frames + t] = std::norm(X[k]);
  }
}

}  // namespace

int64_t stft_frames(int64_t length, const StftOptions& options) {
  return check_framing(op_name_or("stft"), length, options).frames;
}

Tensor stft_power(const Tensor& waveforms, const StftOptions& options) {
  const char* op = op_name_or("stft");
  OpScope scope("stft");
  int64_t B = 0, L = 0;
  MMGRAD_CHECK(waveforms.defined(), op, ": undefined waveform tensor");
  MMGRAD_CHECK(waveforms.dim() == 1 || waveforms.dim() == 2, op,
               ": expects waveforms [L] or [B, L], got shape ", waveforms.shape_str());
  const Framing f = check_framing(op, waveforms.size(waveforms.dim() - 1), options);
  const std::vector<double> x = waveform_rows(op, waveforms, B, L);
  // The window of win_length, zero-padded to n_fft on both sides (torch.stft does the same).
  std::vector<double> window(static_cast<size_t>(f.n_fft), 0.0);
  const std::vector<double> w = hann_window(f.win, true);
  const int64_t left = (f.n_fft - f.win) / 2;
  for (int64_t i = 0; i < f.win; ++i) window[left + i] = w[i];
  const int64_t nf = f.n_fft / 2 + 1;
  Tensor out = Tensor::empty({B, nf, f.frames}, kFloat64);
  double* o = out.data_ptr<double>();
  // One waveform per iteration: each writes only its own slice, so the numbers do not depend on
  // the thread count.
#pragma omp parallel for schedule(static) if (B * L > 65536)
  for (int64_t b = 0; b < B; ++b)
    power_of_one(x.data() + b * L, L, f, window, o + b * nf * f.frames);
  if (waveforms.dim() == 1) out = out.reshape({nf, f.frames});
  return waveforms.dtype() == kFloat64 ? out : out.to(waveforms.dtype());
}

// ---- mel --------------------------------------------------------------------------------------

namespace {
constexpr double kSlaneyMinLogHz = 1000.0;
constexpr double kSlaneyMinLogMel = 15.0;  // 1000 Hz * 3 / 200
const double kSlaneyLogStep = std::log(6.4) / 27.0;
}  // namespace

double hz_to_mel(double hz, MelScale scale) {
  if (scale == MelScale::HTK) return 2595.0 * std::log10(1.0 + hz / 700.0);
  if (hz < kSlaneyMinLogHz) return 3.0 * hz / 200.0;
  return kSlaneyMinLogMel + std::log(hz / kSlaneyMinLogHz) / kSlaneyLogStep;
}

double mel_to_hz(double mel, MelScale scale) {
  if (scale == MelScale::HTK) return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
  if (mel < kSlaneyMinLogMel) return 200.0 * mel / 3.0;
  return kSlaneyMinLogHz * std::exp(kSlaneyLogStep * (mel - kSlaneyMinLogMel));
}

Tensor mel_filterbank(int64_t n_freqs, double f_min, double f_max, int64_t n_mels,
                      int64_t sample_rate, MelScale scale) {
  const char* op = op_name_or("mel_filterbank");
  MMGRAD_CHECK(n_freqs >= 2 && n_freqs <= (int64_t{1} << 23), op, ": n_freqs ", n_freqs,
               " is outside [2, 2^23] (n_freqs = n_fft / 2 + 1)");
  MMGRAD_CHECK(n_mels >= 1 && n_mels <= 4096, op, ": n_mels ", n_mels, " is outside [1, 4096]");
  check_sample_rate(op, sample_rate);
  const double nyquist = static_cast<double>(sample_rate) / 2.0;
  MMGRAD_CHECK(std::isfinite(f_min) && std::isfinite(f_max) && f_min >= 0 && f_min < f_max &&
                   f_max <= nyquist,
               op, ": frequency range [", f_min, ", ", f_max, "] Hz; expected 0 <= f_min < f_max ",
               "<= sample_rate / 2 = ", nyquist);
  const double m_lo = hz_to_mel(f_min, scale), m_hi = hz_to_mel(f_max, scale);
  std::vector<double> f_pts(static_cast<size_t>(n_mels + 2));
  for (int64_t i = 0; i < n_mels + 2; ++i)
    f_pts[i] = mel_to_hz(
        m_lo + (m_hi - m_lo) * static_cast<double>(i) / static_cast<double>(n_mels + 1), scale);
  std::vector<float> fb(static_cast<size_t>(n_freqs * n_mels), 0.0f);
  for (int64_t m = 0; m < n_mels; ++m) {
    const double lo = f_pts[m], mid = f_pts[m + 1], hi = f_pts[m + 2];
    bool any = false;
    for (int64_t k = 0; k < n_freqs; ++k) {
      const double f = nyquist * static_cast<double>(k) / static_cast<double>(n_freqs - 1);
      const double up = (f - lo) / (mid - lo), down = (hi - f) / (hi - mid);
      const double v = std::max(0.0, std::min(up, down));
      fb[k * n_mels + m] = static_cast<float>(v);
      any = any || v > 0;
    }
    MMGRAD_CHECK(any, op, ": mel filter ", m, " (", lo, " to ", hi, " Hz) covers no FFT bin ",
                 "(bins are ", nyquist / static_cast<double>(n_freqs - 1), " Hz apart); use ",
                 "fewer mels (", n_mels, " now), a larger n_fft or a higher f_min");
  }
  return Tensor::from_vector(fb, {n_freqs, n_mels});
}

std::string LogMelOptions::str() const {
  return "sr=" + std::to_string(sample_rate) + " " + stft.str() +
         " n_mels=" + std::to_string(n_mels) +
         " scale=" + (scale == MelScale::HTK ? "htk" : "slaney");
}

Tensor log_mel_spectrogram(const Tensor& waveforms, const LogMelOptions& o) {
  const char* op = "log_mel_spectrogram";
  OpScope scope(op);
  MMGRAD_CHECK(waveforms.defined() && (waveforms.dim() == 1 || waveforms.dim() == 2), op,
               ": expects waveforms [L] or [B, L]",
               waveforms.defined() ? ", got shape " + waveforms.shape_str() : std::string());
  MMGRAD_CHECK(std::isfinite(o.amin) && o.amin > 0, op, ": amin ", o.amin, " must be > 0");
  MMGRAD_CHECK(!std::isnan(o.top_db), op, ": top_db is NaN");
  check_sample_rate(op, o.sample_rate);
  const double f_max = o.f_max < 0 ? static_cast<double>(o.sample_rate) / 2.0 : o.f_max;
  const int64_t nf = o.stft.n_fft / 2 + 1;
  // Checks the filterbank (and n_fft) before any spectrum is computed.
  MMGRAD_CHECK(o.stft.n_fft >= 2, op, ": n_fft ", o.stft.n_fft,
               " gives fewer than 2 frequency bins");
  const Tensor fb = mel_filterbank(nf, o.f_min, f_max, o.n_mels, o.sample_rate, o.scale);
  Tensor power = stft_power(
      waveforms.dim() == 1 ? waveforms.reshape({1, waveforms.size(0)}) : waveforms, o.stft);
  power = power.to(kFloat64).contiguous();
  const int64_t B = power.size(0), T = power.size(2), M = o.n_mels;
  const double* p = power.data_ptr<double>();
  const float* w = fb.data_ptr<float>();
  // Each triangle covers a few bins only: sum over [first[m], last[m]) instead of all nf.
  std::vector<int64_t> first(M, nf), last(M, 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < nf; ++k)
      if (w[k * M + m] != 0.0f) {
        first[m] = std::min(first[m], k);
        last[m] = k + 1;
      }
  std::vector<float> out(static_cast<size_t>(B * M * T));
#pragma omp parallel for schedule(static) if (B * nf * T > 262144)
  for (int64_t b = 0; b < B; ++b) {
    const double* pb = p + b * nf * T;
    float* ob = out.data() + b * M * T;
    double top = -std::numeric_limits<double>::infinity();
    std::vector<double> db(static_cast<size_t>(M * T));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t t = 0; t < T; ++t) {
        double s = 0;
        for (int64_t k = first[m]; k < last[m]; ++k)
          s += static_cast<double>(w[k * M + m]) * pb[k * T + t];
        db[m * T + t] = 10.0 * std::log10(std::max(s, o.amin));
        top = std::max(top, db[m * T + t]);
      }
    for (int64_t i = 0; i < M * T; ++i)
      ob[i] = static_cast<float>(o.top_db > 0 ? std::max(db[i], top - o.top_db) : db[i]);
  }
  Tensor r = Tensor::from_vector(out, {B, M, T});
  return waveforms.dim() == 1 ? r.reshape({M, T}) : r;
}

}  // namespace mmgrad::audio
