#include "models/adm_config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/base/limits.h"

namespace dsk {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw ConfigError(where + ": " + what);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    out.push_back(item);
  }
  return out;
}


// Lists may be given as "16,8" or [16, 8].
std::string as_list(const json& v, const std::string& key, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const auto& e : v) {
      if (!e.is_number()) fail(where, "flag '" + key + "' must list numbers, got " + v.dump());
      if (!out.empty()) out += ",";
      out += e.is_number_integer() ? std::to_string(e.get<int64_t>()) : e.dump();
    }
    return out;
  }
  fail(where, "flag '" + key + "' must be a comma-separated list, got " + v.dump());
}

// Reads each known flag of `flags` through `read`, and rejects keys nobody knows.
template <class Reader>
void read_flags(const json& flags, const std::string& where, const std::set<std::string>& known,
                const std::vector<std::string>& known_extra, Reader read) {
  if (!flags.is_object()) fail(where, "flags must be a JSON object, got " + flags.dump());
  for (auto it = flags.begin(); it != flags.end(); ++it) {
    if (known.count(it.key())) {
      read(it.key(), it.value());
    } else if (std::find(known_extra.begin(), known_extra.end(), it.key()) == known_extra.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(where, "unknown flag '" + it.key() + "' (known: " + list + ")");
    }
  }
}

void check_groups(int channels, const std::string& what, const std::string& where) {
  if (channels <= 0 || channels % 32 != 0)
    fail(where, what + " has " + std::to_string(channels) +
                    " channels; GroupNorm32 needs a positive multiple of 32 (change num_channels / channel_mult)");
}

// Every requested attention rate must be a downsample rate the network reaches.
void check_rates(const std::vector<int>& rates, size_t levels, const std::string& flag,
                 const std::string& where, int image_size) {
  for (int rate : rates) {
    bool reached = false;
    for (size_t level = 0, ds = 1; level < levels; ++level, ds *= 2) reached |= (static_cast<int>(ds) == rate);
    if (!reached)
      fail(where, flag + " asks for attention at resolution " + std::to_string(image_size / std::max(rate, 1)) +
                      ", which a " + std::to_string(levels) + "-level network on " + std::to_string(image_size) +
                      " px images never reaches (reached: " + std::to_string(image_size) + " down to " +
                      std::to_string(image_size >> (levels - 1)) + ")");
  }
}

std::vector<int> rates_from_resolutions(const std::string& text, int image_size, const std::string& flag,
                                        const std::string& where) {
  std::vector<int> rates;
  for (int res : parse_int_list(text, where + " (" + flag + ")")) {
    if (res <= 0 || image_size % res != 0)
      fail(where, flag + " contains " + std::to_string(res) + ", which does not divide image_size " +
                      std::to_string(image_size));
    rates.push_back(image_size / res);
  }
  return rates;
}

}  // namespace

bool flag_bool(const json& v, const std::string& key, const std::string& where) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    if (s == "true" || s == "1" || s == "yes") return true;
    if (s == "false" || s == "0" || s == "no") return false;
  }
  if (v.is_number_integer()) return v.get<int64_t>() != 0;
  fail(where, "flag '" + key + "' must be true or false, got " + v.dump());
}

int flag_int(const json& v, const std::string& key, const std::string& where) {
  if (v.is_number_integer()) {
    auto x = v.get<int64_t>();
    if (x >= -(1LL << 31) && x < (1LL << 31)) return static_cast<int>(x);
  }
  if (v.is_string()) {
    try {
      size_t used = 0;
      int x = std::stoi(v.get<std::string>(), &used);
      if (used == v.get<std::string>().size()) return x;
    } catch (const std::exception&) {
    }
  }
  fail(where, "flag '" + key + "' must be an integer, got " + v.dump());
}

double flag_double(const json& v, const std::string& key, const std::string& where) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    try {
      return std::stod(v.get<std::string>());
    } catch (const std::exception&) {
    }
  }
  fail(where, "flag '" + key + "' must be a number, got " + v.dump());
}

std::vector<double> default_channel_mult(int image_size, const std::string& where) {
  switch (image_size) {
    case 512: return {0.5, 1, 1, 2, 2, 4, 4};
    case 256: return {1, 1, 2, 2, 4, 4};
    case 128: return {1, 1, 2, 3, 4};
    case 64: return {1, 2, 3, 4};
    default:
      fail(where, "channel_mult is empty and image_size " + std::to_string(image_size) +
                      " has no default (64, 128, 256, 512); give channel_mult, e.g. \"1,2,2\"");
  }
}

std::vector<double> parse_channel_mult(const std::string& text, const std::string& where) {
  std::vector<double> out;
  for (const auto& item : split(text)) {
    try {
      size_t used = 0;
      double v = std::stod(item, &used);
      if (used != item.size() || !(v > 0)) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      fail(where, "channel_mult '" + text + "' must be positive numbers separated by commas");
    }
  }
  if (out.empty()) fail(where, "channel_mult is empty");
  if (out.size() > kMaxLevels)
    fail(where, "channel_mult '" + text + "' has more than " + std::to_string(kMaxLevels) + " levels");
  for (double m : out)
    if (m > kMaxChannelMult) fail(where, "channel_mult '" + text + "': a multiplier above " + std::to_string(static_cast<int>(kMaxChannelMult)));
  return out;
}

std::vector<int> parse_int_list(const std::string& text, const std::string& where) {
  std::vector<int> out;
  if (text.empty()) return out;
  for (const auto& item : split(text)) {
    try {
      size_t used = 0;
      int v = std::stoi(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      fail(where, "'" + text + "' must be integers separated by commas");
    }
  }
  return out;
}

std::vector<double> UNetConfig::channel_mults() const {
  return channel_mult.empty() ? default_channel_mult(image_size, "unet config")
                              : parse_channel_mult(channel_mult, "unet config");
}

std::vector<int> UNetConfig::attention_rates() const {
  return rates_from_resolutions(attention_resolutions, image_size, "attention_resolutions", "unet config");
}

void UNetConfig::validate(const std::string& where) const {
  auto bad = [&](bool cond, const std::string& what) {
    if (cond) fail(where, what);
  };
  // Sizes far beyond any ADM model (the 512 px one: 256 channels, 2 blocks, 559 M parameters) are
  // refused before anything is built: a typo must not allocate gigabytes.
  auto in = [&](const Range<int>& range, int v, const char* name) {
    bad(!range.contains(v), std::string(name) + " must be in " + range_text(range));
  };
  in(kImageSizeRange, image_size, "image_size");
  in(kInChannelsRange, in_channels, "in_channels");
  in(kNumChannelsRange, num_channels, "num_channels");
  in(kNumResBlocksRange, num_res_blocks, "num_res_blocks");
  bad(num_heads > kMaxHeads || num_heads_upsample > kMaxHeads || num_head_channels > kMaxHeadChannels,
      "attention heads beyond any ADM model");
  bad(num_head_channels != -1 && num_head_channels <= 0, "num_head_channels must be positive, or -1 (use num_heads)");
  bad(num_heads_upsample != -1 && num_heads_upsample <= 0, "num_heads_upsample must be positive, or -1 (num_heads)");
  bad(num_classes > kMaxClasses, "num_classes must be at most " + std::to_string(kMaxClasses));
  bad(class_cond && num_classes <= 0, "num_classes must be positive for a class-conditional model");
  bad(dropout < 0 || dropout >= 1, "dropout must be in [0, 1)");
  bad(!(sketch_null >= -10 && sketch_null <= 0),
      "sketch_null must be in -10..0: 0 (no sketch = a blank sketch) or a negative value such as -1");
  bad(sketch_null != 0 && sketch_channels <= 0, "sketch_null needs an editing model (sketch_channels > 0)");
  bad(num_head_channels == -1 && num_heads <= 0, "num_heads must be positive when num_head_channels is -1");
  const auto mults = channel_mult.empty() ? default_channel_mult(image_size, where) : parse_channel_mult(channel_mult, where);
  const int levels = static_cast<int>(mults.size());
  bad(image_size % (1 << (levels - 1)) != 0,
      "image_size " + std::to_string(image_size) + " cannot be halved " + std::to_string(levels - 1) +
          " times (channel_mult has " + std::to_string(levels) + " levels)");
  const auto rates = rates_from_resolutions(attention_resolutions, image_size, "attention_resolutions", where);
  double conv_params = 0;  // 3x3 convolutions of the res blocks, down and up: most of the network
  for (double m : mults) conv_params += (3.0 * num_res_blocks + 1) * 2 * 9 * (m * num_channels) * (m * num_channels);
  if (conv_params > kMaxNetworkParams)
    fail(where, "the network would have about " + std::to_string(static_cast<int64_t>(conv_params / 1e6)) +
                    " M parameters; the limit is " + std::to_string(static_cast<int64_t>(kMaxNetworkParams / 1e6)) + " M");
  for (int level = 0; level < levels; ++level) {
    const double m = mults[level];
    const int ch = static_cast<int>(m * num_channels);
    check_groups(ch, "a level with channel_mult " + std::to_string(m), where);
    // Attention runs at the requested rates and always in the middle block (deepest level).
    const bool attends = level == levels - 1 || std::count(rates.begin(), rates.end(), 1 << level) > 0;
    if (!attends) continue;
    if (num_head_channels != -1 && ch % num_head_channels != 0)
      fail(where, "num_head_channels " + std::to_string(num_head_channels) + " does not divide " +
                      std::to_string(ch) + " channels");
    if (num_head_channels == -1 && (ch % num_heads != 0 || ch % heads_upsample() != 0))
      fail(where, "num_heads " + std::to_string(num_heads) + " does not divide " + std::to_string(ch) + " channels");
  }
  check_rates(rates, levels, "attention_resolutions", where, image_size);
}

std::vector<double> ClassifierConfig::channel_mults() const {
  return classifier_channel_mult.empty() ? default_channel_mult(image_size, "classifier config")
                                         : parse_channel_mult(classifier_channel_mult, "classifier config");
}

std::vector<int> ClassifierConfig::attention_rates() const {
  return rates_from_resolutions(classifier_attention_resolutions, image_size, "classifier_attention_resolutions",
                                "classifier config");
}

void ClassifierConfig::validate(const std::string& where) const {
  if (image_size <= 0 || image_size > 4096) fail(where, "image_size must be in 1..4096");
  if (in_channels <= 0 || in_channels > 64) fail(where, "in_channels must be in 1..64");
  if (classifier_width <= 0 || classifier_width > 4096) fail(where, "classifier_width must be in 1..4096");
  if (classifier_depth <= 0 || classifier_depth > 16) fail(where, "classifier_depth must be in 1..16");
  if (num_classes <= 0 || num_classes > 100000) fail(where, "num_classes must be in 1..100000");
  static const std::set<std::string> pools = {"adaptive", "attention", "spatial", "spatial_v2"};
  if (!pools.count(classifier_pool))
    fail(where, "classifier_pool '" + classifier_pool + "' is not one of adaptive, attention, spatial, spatial_v2");
  const auto mults = classifier_channel_mult.empty() ? default_channel_mult(image_size, where)
                                                     : parse_channel_mult(classifier_channel_mult, where);
  const int levels = static_cast<int>(mults.size());
  if (image_size % (1 << (levels - 1)) != 0)
    fail(where, "image_size " + std::to_string(image_size) + " cannot be halved " + std::to_string(levels - 1) + " times");
  for (double m : mults) {
    const int ch = static_cast<int>(m * classifier_width);  // every level: the classifier's pools attend at the end
    check_groups(ch, "a classifier level with channel_mult " + std::to_string(m), where);
    if (classifier_num_head_channels <= 0 || ch % classifier_num_head_channels != 0)
      fail(where, "classifier_num_head_channels " + std::to_string(classifier_num_head_channels) +
                      " must divide " + std::to_string(ch) + " channels");
  }
  check_rates(rates_from_resolutions(classifier_attention_resolutions, image_size, "classifier_attention_resolutions",
                                     where),
              levels, "classifier_attention_resolutions", where, image_size);
}

UNetConfig unet_config_from_json(const json& flags, const std::string& where,
                                 const std::vector<std::string>& known_extra) {
  UNetConfig c;
  static const std::set<std::string> known = {
      "image_size", "in_channels", "num_channels", "num_res_blocks", "channel_mult", "attention_resolutions",
      "dropout", "class_cond", "num_classes", "num_heads", "num_head_channels", "num_heads_upsample",
      "use_scale_shift_norm", "resblock_updown", "use_fp16", "use_new_attention_order", "learn_sigma",
      "use_checkpoint", "sketch_channels", "sketch_null"};
  read_flags(flags, where, known, known_extra, [&](const std::string& k, const json& v) {
    if (k == "image_size") c.image_size = flag_int(v, k, where);
    else if (k == "in_channels") c.in_channels = flag_int(v, k, where);
    else if (k == "num_channels") c.num_channels = flag_int(v, k, where);
    else if (k == "num_res_blocks") c.num_res_blocks = flag_int(v, k, where);
    else if (k == "channel_mult") c.channel_mult = as_list(v, k, where);
    else if (k == "attention_resolutions") c.attention_resolutions = as_list(v, k, where);
    else if (k == "dropout") c.dropout = flag_double(v, k, where);
    else if (k == "class_cond") c.class_cond = flag_bool(v, k, where);
    else if (k == "num_classes") c.num_classes = flag_int(v, k, where);
    else if (k == "num_heads") c.num_heads = flag_int(v, k, where);
    else if (k == "num_head_channels") c.num_head_channels = flag_int(v, k, where);
    else if (k == "num_heads_upsample") c.num_heads_upsample = flag_int(v, k, where);
    else if (k == "use_scale_shift_norm") c.use_scale_shift_norm = flag_bool(v, k, where);
    else if (k == "resblock_updown") c.resblock_updown = flag_bool(v, k, where);
    else if (k == "use_fp16") c.use_fp16 = flag_bool(v, k, where);
    else if (k == "use_new_attention_order") c.use_new_attention_order = flag_bool(v, k, where);
    else if (k == "learn_sigma") c.learn_sigma = flag_bool(v, k, where);
    else if (k == "sketch_channels") c.sketch_channels = flag_int(v, k, where);
    else if (k == "sketch_null") c.sketch_null = flag_double(v, k, where);
    // use_checkpoint only trades memory for time in the reference; accepted and ignored.
  });
  c.validate(where);
  return c;
}

ClassifierConfig classifier_config_from_json(const json& flags, const std::string& where,
                                             const std::vector<std::string>& known_extra) {
  ClassifierConfig c;
  static const std::set<std::string> known = {
      "image_size", "in_channels", "classifier_width", "classifier_depth", "classifier_attention_resolutions",
      "classifier_channel_mult", "classifier_num_head_channels", "classifier_use_scale_shift_norm",
      "classifier_resblock_updown", "classifier_pool", "classifier_use_fp16", "num_classes"};
  read_flags(flags, where, known, known_extra, [&](const std::string& k, const json& v) {
    if (k == "image_size") c.image_size = flag_int(v, k, where);
    else if (k == "in_channels") c.in_channels = flag_int(v, k, where);
    else if (k == "classifier_width") c.classifier_width = flag_int(v, k, where);
    else if (k == "classifier_depth") c.classifier_depth = flag_int(v, k, where);
    else if (k == "classifier_attention_resolutions") c.classifier_attention_resolutions = as_list(v, k, where);
    else if (k == "classifier_channel_mult") c.classifier_channel_mult = as_list(v, k, where);
    else if (k == "classifier_num_head_channels") c.classifier_num_head_channels = flag_int(v, k, where);
    else if (k == "classifier_use_scale_shift_norm") c.classifier_use_scale_shift_norm = flag_bool(v, k, where);
    else if (k == "classifier_resblock_updown") c.classifier_resblock_updown = flag_bool(v, k, where);
    else if (k == "classifier_pool") {
      if (!v.is_string()) fail(where, "classifier_pool must be a string");
      c.classifier_pool = v.get<std::string>();
    } else if (k == "classifier_use_fp16") c.classifier_use_fp16 = flag_bool(v, k, where);
    else if (k == "num_classes") c.num_classes = flag_int(v, k, where);
  });
  c.validate(where);
  return c;
}

json to_json(const UNetConfig& c) {
  json j = {{"image_size", c.image_size},
            {"num_channels", c.num_channels},
            {"num_res_blocks", c.num_res_blocks},
            {"channel_mult", c.channel_mult},
            {"attention_resolutions", c.attention_resolutions},
            {"dropout", c.dropout},
            {"class_cond", c.class_cond},
            {"num_heads", c.num_heads},
            {"num_head_channels", c.num_head_channels},
            {"num_heads_upsample", c.num_heads_upsample},
            {"use_scale_shift_norm", c.use_scale_shift_norm},
            {"resblock_updown", c.resblock_updown},
            {"use_fp16", c.use_fp16},
            {"use_new_attention_order", c.use_new_attention_order},
            {"learn_sigma", c.learn_sigma}};
  if (c.class_cond) j["num_classes"] = c.num_classes;
  if (c.in_channels != 3) j["in_channels"] = c.in_channels;
  if (c.sketch_channels != 0) j["sketch_channels"] = c.sketch_channels;
  if (c.sketch_null != 0) j["sketch_null"] = c.sketch_null;
  return j;
}

json to_json(const ClassifierConfig& c) {
  return {{"image_size", c.image_size},
          {"classifier_width", c.classifier_width},
          {"classifier_depth", c.classifier_depth},
          {"classifier_attention_resolutions", c.classifier_attention_resolutions},
          {"classifier_channel_mult", c.classifier_channel_mult},
          {"classifier_num_head_channels", c.classifier_num_head_channels},
          {"classifier_use_scale_shift_norm", c.classifier_use_scale_shift_norm},
          {"classifier_resblock_updown", c.classifier_resblock_updown},
          {"classifier_pool", c.classifier_pool},
          {"classifier_use_fp16", c.classifier_use_fp16},
          {"num_classes", c.num_classes}};
}

}  // namespace dsk
