// Audio for the lessons: WAV files (16-bit PCM), a real FFT, the short-time Fourier transform, a
// mel filterbank and the log-mel spectrogram a sound encoder reads.
//
// These are data transforms, like data/image.h (and they live beside it in data/ for that
// reason): they take plain waveforms and return plain tensors, with no gradient. A model learns
// from the log-mel spectrogram, not through it.
//
// The pipeline from a waveform x (samples at sample_rate Hz) to what the encoder sees:
//
//   1. frames: slices of n_fft samples every hop_length samples, each multiplied by a Hann window
//      (so the frame fades in and out instead of being cut off, which would smear every tone
//      over all frequencies);
//   2. a real FFT of each frame: X_k = sum_n x_n e^{-2 pi i k n / n_fft}, k = 0 .. n_fft / 2,
//      bin k being the frequency k * sample_rate / n_fft; the power |X_k|^2 says how much of that
//      frequency the frame holds (the spectrogram: frequency by time);
//   3. a mel filterbank: n_mels triangular filters spaced evenly on the mel scale (roughly how
//      we hear pitch: equal steps in mel sound like equal steps in pitch, so the filters are
//      narrow at low frequencies and wide at high ones), each summing the power of nearby bins;
//   4. decibels: 10 log10(power), since loudness is heard on a log scale and the network should
//      not see numbers spanning ten orders of magnitude.
//
// Names and conventions follow PyTorch (torch.stft, torch.fft.rfft, torch.hann_window) and
// torchaudio (melscale_fbanks, AmplitudeToDB); each divergence is stated where it is.
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::audio {

// ---- WAV files ----------------------------------------------------------------------------------
// A WAV file is a RIFF container: "RIFF" <size> "WAVE", then chunks, each a 4-letter id, a
// 32-bit little-endian size and that many bytes (plus a pad byte when the size is odd). The
// "fmt " chunk says how samples are stored (format 1 = integer PCM, channels, sample rate, bits
// per sample); the "data" chunk holds the samples, channels interleaved. Other chunks (LIST,
// fact, ...) are skipped.

struct Wav {
  int64_t sample_rate = 0;
  int64_t channels = 0;
  std::vector<float> samples;  // interleaved, frames * channels values in [-1, 1)
  int64_t frames() const {
    return channels > 0 ? static_cast<int64_t>(samples.size()) / channels : 0;
  }
};

inline constexpr int64_t kMaxSampleRate = 1 << 20;  // a sample rate above this is refused
inline constexpr int64_t kMaxChannels = 64;

// The bytes of a mono 16-bit PCM WAV file: each sample is clamped to [-1, 1] and stored as
// round(x * 32767). Non-finite samples and a sample rate outside [1, kMaxSampleRate] are errors.
std::string encode_wav(const std::vector<float>& samples, int64_t sample_rate);
// Writes encode_wav(...) to path atomically (a temporary file renamed into place; parent folders
// are created), so a reader never sees half a file.
void write_wav(const std::string& path, const std::vector<float>& samples, int64_t sample_rate);

// Reads 16-bit PCM WAV (any number of channels up to kMaxChannels), samples scaled by 1 / 32768.
// A file that is not RIFF/WAVE, lacks "fmt " or "data", stores another format (float, 8/24-bit,
// compressed) or is cut short (a chunk running past the end of the file, a data size that is not
// a whole number of frames) throws mmgrad::Error naming read_wav and the file.
Wav read_wav(const std::string& path);
// The same from bytes in memory; `name` stands for the path in error messages.
Wav decode_wav(const void* data, size_t size, const std::string& name = "<memory>");

// ---- Fourier transforms -------------------------------------------------------------------------

// The discrete Fourier transform of real x (n values), straight from its definition,
//   X_k = sum_{t=0}^{n-1} x_t (cos(2 pi k t / n) - i sin(2 pi k t / n)),  k = 0 .. n / 2,
// in O(n^2) operations, accumulated in long double: the reference the FFT is tested against.
template <class T>
std::vector<std::complex<T>> dft(const std::vector<T>& x);

// In-place forward FFT of complex data whose length is a power of two (iterative radix-2
// Cooley-Tukey: bit-reversal permutation, then log2 n passes of butterflies). Twiddle factors
// are computed in double and rounded once to T.
template <class T>
void fft_inplace(std::vector<std::complex<T>>& x);

// The FFT of real input, the n / 2 + 1 non-negative-frequency bins (torch.fft.rfft,
// numpy.fft.rfft; the others are their complex conjugates). For a power-of-two n >= 4 it packs
// the n real values into n / 2 complex ones (even samples as real parts, odd ones as imaginary),
// runs one FFT of half the size and untangles the two spectra:
//   E_k = (Z_k + conj(Z_{n/2-k})) / 2,  O_k = (Z_k - conj(Z_{n/2-k})) / 2i,
//   X_k = E_k + e^{-2 pi i k / n} O_k,
// about half the work of a complex FFT of n points. Any other n falls back to dft() (O(n^2);
// fine for the lessons, which use powers of two). Empty input is an error; NaN propagates into
// every bin (as in PyTorch).
template <class T>
std::vector<std::complex<T>> rfft(const std::vector<T>& x);

// ---- the short-time Fourier transform -----------------------------------------------------------

// torch.hann_window(n, periodic): w_t = 0.5 - 0.5 cos(2 pi t / N), N = n (periodic, the default,
// the right choice for spectral analysis) or n - 1 (symmetric). n = 1 gives {1}.
std::vector<double> hann_window(int64_t n, bool periodic = true);

struct StftOptions {
  int64_t n_fft = 256;      // samples per frame (the FFT size)
  int64_t hop_length = -1;  // samples between frame starts; -1: n_fft / 4 (torch's default)
  int64_t win_length = -1;  // Hann window length <= n_fft, zero-padded to n_fft in the middle;
                            // -1: n_fft
  bool center = true;       // pad n_fft / 2 samples on both sides by reflection (torch's
                            // default, pad_mode "reflect"): frame t is centred on sample t * hop
  std::string str() const;  // "n_fft=256 hop=128 win=256 center=1"
};

// Number of frames stft_power gives a signal of `length` samples:
//   center: 1 + length / hop (integer division), else 1 + (length - n_fft) / hop.
// Errors when the options are invalid or the signal does not fit (see stft_power).
int64_t stft_frames(int64_t length, const StftOptions& options);

// The power spectrogram |STFT|^2 of each waveform: waveforms [B, L] or [L], float32 or float64,
// any device and strides (copied to the CPU) -> [B, n_fft / 2 + 1, frames] (or [n_fft / 2 + 1,
// frames]) of the same dtype, computed in float64. torch.stft(x, n_fft, hop_length, win_length,
// hann_window(win_length), center, "reflect", normalized=False, onesided=True, return_complex=
// True).abs().pow(2), frequency by time as there.
// Errors (naming stft): n_fft < 1, hop < 1, win_length outside [1, n_fft], an empty signal, a
// signal too short for the framing (center: reflection needs L > n_fft / 2; else L >= n_fft),
// and non-finite samples. The last is a divergence: torch.stft lets NaN through; here a NaN in a
// waveform means a broken file or generator, and it is caught where it enters.
Tensor stft_power(const Tensor& waveforms, const StftOptions& options);

// ---- the mel scale
// --------------------------------------------------------------------------------

// HTK: mel = 2595 log10(1 + f / 700) (torchaudio's default, mel_scale="htk").
// Slaney: linear below 1 kHz (mel = 3 f / 200), logarithmic above (27 / log(6.4) mel per e-fold),
// as librosa's default and torchaudio's mel_scale="slaney".
enum class MelScale { HTK, Slaney };
double hz_to_mel(double hz, MelScale scale = MelScale::HTK);
double mel_to_hz(double mel, MelScale scale = MelScale::HTK);

// torchaudio.functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm=None,
// mel_scale): float32 [n_freqs, n_mels], column m the triangle rising from mel point m to m + 1
// and falling to m + 2, where the n_mels + 2 mel points are spaced evenly from hz_to_mel(f_min) to
// hz_to_mel(f_max) and bin k sits at frequency k * (sample_rate / 2) / (n_freqs - 1). A power
// spectrogram [.., n_freqs, T] becomes mel power by fb^T @ spec.
// Errors (naming mel_filterbank): n_freqs < 2, n_mels < 1, sample_rate < 1, f_min < 0,
// f_min >= f_max, f_max > sample_rate / 2, and a filter that covers no FFT bin at all. The last
// is a divergence: torchaudio only warns, and its mel band is then always 0 (use fewer mels, a
// larger n_fft or a higher f_min).
Tensor mel_filterbank(int64_t n_freqs, double f_min, double f_max, int64_t n_mels,
                      int64_t sample_rate, MelScale scale = MelScale::HTK);

struct LogMelOptions {
  int64_t sample_rate = 8000;
  StftOptions stft;
  int64_t n_mels = 32;
  double f_min = 0.0;
  double f_max = -1.0;  // -1: sample_rate / 2
  MelScale scale = MelScale::HTK;
  // torchaudio.transforms.AmplitudeToDB(stype="power", top_db): 10 log10(max(p, amin)); then,
  // with top_db > 0, every value is raised to at least (that spectrogram's maximum - top_db), so
  // near-silent frames do not sit at -100 dB. Applied per waveform of the batch.
  double amin = 1e-10;
  double top_db = 80.0;  // <= 0: no floor
  std::string str() const;
};

// The log-mel spectrogram in dB of each waveform: [B, L] or [L] (float32/float64) -> float32
// [B, n_mels, frames] (or [n_mels, frames]): stft_power, mel_filterbank, then AmplitudeToDB.
// Errors name log_mel_spectrogram (and come from the steps above for bad framing or NaN).
Tensor log_mel_spectrogram(const Tensor& waveforms, const LogMelOptions& options);

}  // namespace mmgrad::audio
