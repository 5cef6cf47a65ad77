// Portable random draws for the editing code.
//
// std::mt19937_64's output sequence is fixed by the C++ standard, but std::uniform_*_distribution
// and std::normal_distribution are not: libstdc++, libc++ and MSVC give different numbers for the
// same seed. Masks, synthetic sketches and evaluation sets must be reproducible everywhere, so all
// draws in editing/ go through these helpers, which only use the raw 64-bit engine output.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace dsk::edit::rnd {

// Uniform in [0, 1) with 53 random bits.
inline double uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Uniform in [lo, hi).
inline double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * uniform(rng);
}

// Uniform integer in [lo, hi] (inclusive); hi < lo returns lo.
inline int uniform_int(std::mt19937_64& rng, int lo, int hi) {
  if (hi <= lo) return lo;
  const auto span = static_cast<std::uint64_t>(static_cast<std::int64_t>(hi) - lo + 1);
  // Plain modulo: the bias is < span / 2^64, irrelevant here.
  return lo + static_cast<int>(rng() % span);
}

// true with probability p.
inline bool bernoulli(std::mt19937_64& rng, double p) { return uniform(rng) < p; }

// Standard normal (Box-Muller, one value per call).
inline double normal(std::mt19937_64& rng) {
  double u1 = uniform(rng);
  const double u2 = uniform(rng);
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace dsk::edit::rnd
