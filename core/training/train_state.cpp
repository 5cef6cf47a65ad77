#include "core/training/train_state.h"

#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "core/base/files.h"
#include "core/base/remove_tree.h"
#include "core/formats/tensor_io.h"

namespace dsk {

namespace fs = std::filesystem;
using torch::Tensor;

void Checkpointer::save(torch::nn::Module& model, const std::vector<Tensor>& ema, torch::optim::Adam& adam, long step,
            const std::mt19937_64& rng, const at::Generator& gen, const nlohmann::json& extra,
            const std::map<std::string, std::map<std::string, Tensor>>& files) {
    const fs::path tmp = dir.string() + ".tmp";
    remove_tree(tmp);
    fs::create_directories(tmp);
    auto params = model.named_parameters();
    std::map<std::string, Tensor> weights, ema_map, adam_map;
    for (size_t i = 0; i < params.size(); ++i) {
      weights[params[i].key()] = params[i].value();
      if (!ema.empty()) ema_map[params[i].key()] = ema[i];
      auto it = adam.state().find(params[i].value().unsafeGetTensorImpl());
      if (it != adam.state().end()) {
        auto& st = static_cast<torch::optim::AdamParamState&>(*it->second);
        adam_map[params[i].key() + ".exp_avg"] = st.exp_avg();
        adam_map[params[i].key() + ".exp_avg_sq"] = st.exp_avg_sq();
        adam_map[params[i].key() + ".step"] = torch::tensor(static_cast<int64_t>(st.step()));
      }
    }
    for (const auto& b : model.named_buffers()) weights[b.key()] = b.value();  // BatchNorm statistics
    write_tensors((tmp / "weights.safetensors").string(), weights);
    if (!ema.empty()) write_tensors((tmp / "ema.safetensors").string(), ema_map);
    write_tensors((tmp / "adam.safetensors").string(), adam_map);
    write_tensors((tmp / "generator.safetensors").string(), {{"state", gen.get_state()}});
    for (const auto& [name, tensors] : files) write_tensors((tmp / name).string(), tensors);
    std::ostringstream rng_state;
    rng_state << rng;
    nlohmann::json state = extra;
    state["step"] = step;
    state["rng"] = rng_state.str();
    write_file(tmp / "state.json", state.dump(2));  // checked: a full disk must not pass for a checkpoint
    replace_tree(tmp, dir);
  }

void Checkpointer::recover(std::ostream& log) const {
  if (fs::exists(dir)) return;
  const fs::path tmp = dir.string() + ".tmp", old = dir.string() + ".old";
  if (fs::exists(tmp / "state.json")) {
    fs::rename(tmp, dir);
    log << "recovered the checkpoint an interrupted save had left in " << tmp.string() << "\n";
  } else if (fs::exists(old / "state.json")) {
    fs::rename(old, dir);
    log << "recovered the previous checkpoint from " << old.string() << " (the last save was interrupted)\n";
  }
}

nlohmann::json Checkpointer::load(torch::nn::Module& model, std::vector<Tensor>& ema, torch::optim::Adam& adam, std::mt19937_64& rng,
                      at::Generator& gen) {
    load_weights(model, st::File::open((dir / "weights.safetensors").string()));
    std::optional<st::File> ema_file;
    if (!ema.empty()) ema_file = st::File::open((dir / "ema.safetensors").string());
    auto adam_file = st::File::open((dir / "adam.safetensors").string());
    auto params = model.named_parameters();
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& name = params[i].key();
      if (ema_file) ema[i].copy_(read_tensor(*ema_file, ema_file->at(name)));
      if (const auto* m = adam_file.find(name + ".exp_avg")) {
        auto st = std::make_unique<torch::optim::AdamParamState>();
        st->exp_avg(read_tensor(adam_file, *m).to(params[i].value().device()));
        st->exp_avg_sq(read_tensor(adam_file, adam_file.at(name + ".exp_avg_sq")).to(params[i].value().device()));
        st->step(read_tensor(adam_file, adam_file.at(name + ".step")).item<int64_t>());
        adam.state()[params[i].value().unsafeGetTensorImpl()] = std::move(st);
      }
    }
    auto gen_file = st::File::open((dir / "generator.safetensors").string());
    gen.set_state(read_tensor(gen_file, gen_file.at("state")));
    std::ifstream in((dir / "state.json").string());
    auto state = nlohmann::json::parse(in);
    std::istringstream rng_state(state["rng"].get<std::string>());
    rng_state >> rng;
    return state;
}

void export_model(const ModelInfo& base, const fs::path& out, torch::nn::Module& model, const std::vector<Tensor>* ema,
                  long step, const std::string& note, torch::ScalarType dtype,
                  const std::map<std::string, std::map<std::string, Tensor>>& extra_files) {
  ModelInfo info = base;
  const fs::path staging = out.string() + ".tmp";
  remove_tree(staging);
  info.dir = staging.string();
  info.notes = note;
  auto params = model.named_parameters();
  std::map<std::string, Tensor> weights;
  for (size_t i = 0; i < params.size(); ++i)
    weights[params[i].key()] = (ema ? (*ema)[i] : params[i].value()).detach().to(torch::kCPU, dtype);
  for (const auto& b : model.named_buffers())  // BatchNorm statistics (counters stay integers)
    weights[b.key()] = b.value().detach().to(torch::kCPU, b.value().is_floating_point() ? dtype : b.value().scalar_type());
  fs::create_directories(staging);
  write_tensors(info.weights_path(), weights, {{"step", std::to_string(step)}, {"weights", ema ? "ema" : "raw"}});
  write_model_info(info);
  for (const auto& [name, tensors] : extra_files) write_tensors((staging / name).string(), tensors);
  replace_tree(staging, out);
}

void ema_update(std::vector<Tensor>& ema, const std::vector<Tensor>& params, double rate, long step, bool warmup) {
  torch::NoGradGuard no_grad;
  const double decay = warmup ? std::min(rate, (1.0 + step) / (10.0 + step)) : rate;
  for (size_t i = 0; i < params.size(); ++i) ema[i].mul_(decay).add_(params[i].detach(), 1 - decay);
}

}  // namespace dsk
