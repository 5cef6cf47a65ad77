#include "editing/interp.h"

#include <cmath>
#include <string>

#include "editing/error.h"

namespace dsk::edit {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<float> mix(std::span<const float> a, std::span<const float> b, double wa, double wb) {
  std::vector<float> out(a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    out[i] = static_cast<float>(wa * static_cast<double>(a[i]) + wb * static_cast<double>(b[i]));
  return out;
}

}  // namespace

std::vector<float> interpolate(std::span<const float> a, std::span<const float> b, InterpMode mode,
                               double frac) {
  if (a.empty() || a.size() != b.size()) {
    throw InputError("interpolate: the two noise arrays have " + std::to_string(a.size()) + " and " +
                     std::to_string(b.size()) + " values; pass two non-empty arrays of the same shape");
  }
  if (!std::isfinite(frac)) throw InputError("interpolate: the fraction must be a finite number");
  if (frac == 0.0) return {a.begin(), a.end()};
  if (frac == 1.0) return {b.begin(), b.end()};
  switch (mode) {
    case InterpMode::Linear: {
      const double beta = 1.0 - frac;
      return mix(a, b, beta, 1.0 - beta);
    }
    case InterpMode::Trig: {
      const double theta = frac * kPi / 2.0;
      return mix(a, b, std::cos(theta), std::sin(theta));
    }
    case InterpMode::Slerp: {
      double dot = 0, na = 0, nb = 0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        dot += static_cast<double>(a[i]) * b[i];
        na += static_cast<double>(a[i]) * a[i];
        nb += static_cast<double>(b[i]) * b[i];
      }
      if (na == 0.0 || nb == 0.0) return mix(a, b, 1.0 - frac, frac);
      const double c = dot / std::sqrt(na * nb);
      if (std::abs(c) > 0.9995) return mix(a, b, 1.0 - frac, frac);
      const double omega = std::acos(c), s = std::sin(omega);
      return mix(a, b, std::sin((1.0 - frac) * omega) / s, std::sin(frac * omega) / s);
    }
  }
  throw InputError("interpolate: unknown interpolation mode");
}

std::vector<double> frame_fractions(int n) {
  if (n < 2) {
    throw InputError("frame_fractions: need at least 2 frames (the two end points), got " + std::to_string(n));
  }
  std::vector<double> f(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) f[static_cast<std::size_t>(i)] = static_cast<double>(i) / (n - 1);
  f.back() = 1.0;
  return f;
}

InterpMode parse_interp_mode(const std::string& name) {
  if (name == "slerp") return InterpMode::Slerp;
  if (name == "linear") return InterpMode::Linear;
  if (name == "trig") return InterpMode::Trig;
  throw InputError("unknown interpolation '" + name + "'; use slerp, linear or trig");
}

}  // namespace dsk::edit
