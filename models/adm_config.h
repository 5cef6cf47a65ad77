// Network configurations with guided-diffusion's flag names and defaults
// (script_util.model_and_diffusion_defaults / classifier_defaults). Torch-free, so the CLI's
// model listing and the plug-in side can read model folders without LibTorch.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace dsk {

// A flag that cannot be (an unknown name, a bad value, an impossible network). A
// std::invalid_argument, as every part's bad-input error (core/base/error.h); models/ sits below
// core/ and does not include it.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Mirrors guided_diffusion.unet.UNetModel as built by script_util.create_model.
struct UNetConfig {
  int image_size = 64;
  int in_channels = 3;
  int num_channels = 128;
  int num_res_blocks = 2;
  std::string channel_mult;                   // "" = derived from image_size, as create_model does
  std::string attention_resolutions = "16,8";  // resolutions, turned into downsample rates
  double dropout = 0.0;
  bool class_cond = false;
  int num_classes = 1000;
  int num_heads = 4;
  int num_head_channels = -1;
  int num_heads_upsample = -1;
  bool use_scale_shift_norm = true;
  bool resblock_updown = false;
  bool use_fp16 = false;
  bool use_new_attention_order = false;
  bool learn_sigma = false;
  // Cross-attention to sketch features (editing-unet only; 0 = plain ADM attention).
  int sketch_channels = 0;
  // The stroke-map value that means "no sketch" (editing-unet): the input of classifier-free
  // guidance's unconditional branch and of sketch dropout in training. 0 (older models): the same
  // as a blank sketch, so "draw nothing here" and "no sketch, invent" are one input; a value below
  // 0 (e.g. -1, outside the strokes' [0, 1]) keeps them apart.
  double sketch_null = 0;

  std::vector<double> channel_mults() const;
  std::vector<int> attention_rates() const;  // image_size / resolution, as create_model does
  int out_channels() const { return learn_sigma ? 6 : 3; }
  int heads_upsample() const { return num_heads_upsample == -1 ? num_heads : num_heads_upsample; }
  // Throws ConfigError naming the impossible flag (groups of 32, unreachable attention resolution...).
  void validate(const std::string& where) const;
};

// Mirrors guided_diffusion.unet.EncoderUNetModel as built by script_util.create_classifier.
struct ClassifierConfig {
  int image_size = 64;
  int in_channels = 3;
  int classifier_width = 128;
  int classifier_depth = 2;
  std::string classifier_attention_resolutions = "32,16,8";
  std::string classifier_channel_mult;  // "" = derived from image_size, as create_classifier does
  int classifier_num_head_channels = 64;
  bool classifier_use_scale_shift_norm = true;
  bool classifier_resblock_updown = true;
  std::string classifier_pool = "attention";  // adaptive | attention | spatial | spatial_v2
  bool classifier_use_fp16 = false;
  int num_classes = 1000;

  std::vector<double> channel_mults() const;
  std::vector<int> attention_rates() const;
  void validate(const std::string& where) const;
};

// The channel multipliers create_model / create_classifier derive from the image size.
std::vector<double> default_channel_mult(int image_size, const std::string& where);
// "1,2,2" -> {1,2,2}; "0.5,1" allowed (the 512 px model uses 0.5).
std::vector<double> parse_channel_mult(const std::string& text, const std::string& where);
std::vector<int> parse_int_list(const std::string& text, const std::string& where);

// Read from a flat JSON object of guided-diffusion flags. Unknown keys are ignored only when
// `known_extra` lists them (so a typo in model.json is an error, not a silent default).
UNetConfig unet_config_from_json(const nlohmann::json& flags, const std::string& where,
                                 const std::vector<std::string>& known_extra = {});
ClassifierConfig classifier_config_from_json(const nlohmann::json& flags, const std::string& where,
                                             const std::vector<std::string>& known_extra = {});
nlohmann::json to_json(const UNetConfig& c);

// One flag of a flat flag object: a JSON value, or guided-diffusion's command-line string ("True",
// "16"). Booleans: true/false, 1/0, yes/no in any case; integers: all of the string ("100x" is
// refused). Anything else is an error naming `key` and `where`.
bool flag_bool(const nlohmann::json& value, const std::string& key, const std::string& where);
int flag_int(const nlohmann::json& value, const std::string& key, const std::string& where);
double flag_double(const nlohmann::json& value, const std::string& key, const std::string& where);
nlohmann::json to_json(const ClassifierConfig& c);

}  // namespace dsk
