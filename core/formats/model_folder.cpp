#include "core/formats/model_folder.h"

#include <cstdlib>
#include <filesystem>

#include "core/base/error.h"
#include "core/formats/manifest.h"
#include "core/formats/tensor_io.h"

namespace dsk {

UNetConfig unet_config_from_flags(const nlohmann::json& flags, const std::string& where) {
  return unet_config_from_json(flags, where, diffusion_flag_names());
}

ClassifierConfig classifier_config_from_flags(const nlohmann::json& flags, const std::string& where) {
  return classifier_config_from_json(flags, where);
}

namespace {

template <class Net>
void finish_load(Net& model, const ModelInfo& info, torch::Device device, bool fp16) {
  auto file = st::File::open(info.weights_path());
  load_weights(*model, file);
  model->eval();
  model->to(device);
  if (fp16 && device.is_cuda()) model->convert_to_fp16();
}

}  // namespace

LoadedUNet load_unet(const std::string& dir, torch::Device device, const std::string& command) {
  configure_threads();
  LoadedUNet out;
  out.info = read_model_info(dir);
  require_kind(out.info, {ModelKind::AdmUnet, ModelKind::EditingUnet}, command);
  require_intact_model(dir);
  out.net = unet_config_from_flags(out.info.flags, out.info.json_path());
  out.diffusion = diffusion_config_from_json(out.info.flags, out.info.json_path());
  if (out.diffusion.learn_sigma != out.net.learn_sigma)
    throw InputError(out.info.json_path() + ": learn_sigma must be set once for both network and diffusion");
  torch::NoGradGuard no_grad;
  out.model = UNetModel(out.net);
  finish_load(out.model, out.info, device, out.net.use_fp16);
  return out;
}

LoadedClassifier load_classifier(const std::string& dir, torch::Device device, const std::string& command) {
  configure_threads();
  LoadedClassifier out;
  out.info = read_model_info(dir);
  require_kind(out.info, {ModelKind::AdmClassifier}, command + " --classifier");
  require_intact_model(dir);
  out.net = classifier_config_from_flags(out.info.flags, out.info.json_path());
  torch::NoGradGuard no_grad;
  out.model = EncoderUNetModel(out.net);
  finish_load(out.model, out.info, device, out.net.classifier_use_fp16);
  return out;
}

}  // namespace dsk
