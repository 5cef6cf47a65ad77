// libFuzzer target for model.json's flags: the network and diffusion configurations read from any
// JSON text, as read_model_info and the loaders read a model folder's flags. Any input must either
// give valid configurations or throw a std::invalid_argument (the configs' ConfigError, the
// schedule's InputError); anything else (another exception, a crash, a division by zero, a
// sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>

#include "core/base/json_depth.h"
#include "core/diffusion/schedule.h"
#include "models/adm_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (dsk::json_nesting_depth(text, 16) > 16) return 0;  // refused before parsing, as read_model_info does
  const auto flags = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (flags.is_discarded()) return 0;
  try {
    const auto unet = dsk::unet_config_from_json(flags, "fuzz", dsk::diffusion_flag_names());
    (void)unet.channel_mults();
    (void)unet.attention_rates();
  } catch (const std::invalid_argument&) {
  }
  try {
    const auto cls = dsk::classifier_config_from_json(flags, "fuzz", {"learn_sigma", "diffusion_steps"});
    (void)cls.channel_mults();
  } catch (const std::invalid_argument&) {
  }
  try {
    const auto d = dsk::diffusion_config_from_json(flags, "fuzz");
    if (!d.timestep_respacing.empty()) (void)dsk::space_timesteps(d.diffusion_steps, d.timestep_respacing);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
