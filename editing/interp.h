// Interpolating between two starting-noise arrays (variation sequences). Torch-free: the engine
// flattens its tensors to float arrays and back.
//
// Convention: frac = 0 gives `a` (frame 0), frac = 1 gives `b` (the last frame), bit-exactly.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace dsk::edit {

enum class InterpMode {
  Slerp,   // spherical: sin((1-t) w)/sin w * a + sin(t w)/sin w * b, w = angle between a and b;
           // linear when |cos w| > 0.9995 (nearly parallel) or a norm is 0
  Linear,  // beta * a + (1 - beta) * b with beta = 1 - frac
  Trig,    // cos(theta) * a + sin(theta) * b, theta = frac * pi / 2 (keeps the variance of two
           // independent unit Gaussians)
};

// Interpolates elementwise (sums in double). Throws edit::InputError when a and b differ in size or
// are empty, or frac is not finite. frac outside [0, 1] extrapolates.
std::vector<float> interpolate(std::span<const float> a, std::span<const float> b, InterpMode mode,
                               double frac);

// n fractions i / (n - 1), i = 0..n-1: exactly 0 first and exactly 1 last. n >= 2, else InputError.
std::vector<double> frame_fractions(int n);

// "slerp" | "linear" | "trig" -> InterpMode; anything else -> InputError naming the choices.
InterpMode parse_interp_mode(const std::string& name);

}  // namespace dsk::edit
