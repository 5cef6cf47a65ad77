#include "core/formats/tensor_io.h"

#include <cstring>
#include <sstream>

#include "core/base/error.h"

namespace dsk {

namespace {

std::string shape_str(c10::IntArrayRef shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? "," : "") << shape[i];
  s << "]";
  return s.str();
}

}  // namespace

torch::ScalarType scalar_type_of(st::DType dtype, const std::string& where) {
  switch (dtype) {
    case st::DType::BOOL: return torch::kBool;
    case st::DType::U8: return torch::kUInt8;
    case st::DType::I8: return torch::kInt8;
    case st::DType::I16: return torch::kInt16;
    case st::DType::I32: return torch::kInt32;
    case st::DType::I64: return torch::kInt64;
    case st::DType::F16: return torch::kHalf;
    case st::DType::BF16: return torch::kBFloat16;
    case st::DType::F32: return torch::kFloat32;
    case st::DType::F64: return torch::kFloat64;
    default:
      throw InputError(where + ": dtype " + st::dtype_name(dtype) + " has no LibTorch equivalent here (use F32, F16, BF16 or F64)");
  }
}

st::DType dtype_of(torch::ScalarType type) {
  switch (type) {
    case torch::kBool: return st::DType::BOOL;
    case torch::kUInt8: return st::DType::U8;
    case torch::kInt8: return st::DType::I8;
    case torch::kInt16: return st::DType::I16;
    case torch::kInt32: return st::DType::I32;
    case torch::kInt64: return st::DType::I64;
    case torch::kHalf: return st::DType::F16;
    case torch::kBFloat16: return st::DType::BF16;
    case torch::kFloat32: return st::DType::F32;
    case torch::kFloat64: return st::DType::F64;
    default: throw Error(std::string("cannot store tensors of type ") + c10::toString(type) + " in safetensors");
  }
}

torch::Tensor read_tensor(const st::File& file, const st::TensorInfo& info) {
  const auto type = scalar_type_of(info.dtype, file.label() + ": tensor '" + info.name + "'");
  auto t = torch::empty(info.shape, torch::TensorOptions().dtype(type));
  const auto bytes = file.bytes(info);
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

std::map<std::string, torch::Tensor> read_tensors(const st::File& file) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& info : file.tensors()) out[info.name] = read_tensor(file, info);
  return out;
}

void write_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                   const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep;
  std::vector<st::TensorView> views;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    keep.push_back(t);
    views.push_back({name, dtype_of(t.scalar_type()), t.sizes().vec(), t.data_ptr(),
                     static_cast<size_t>(t.numel() * t.element_size())});
  }
  st::write(path, views, metadata);
}

std::vector<std::string> load_matching_weights(torch::nn::Module& module, const st::File& file) {
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : module.named_parameters()) targets.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) targets.emplace_back(b.key(), b.value());
  std::vector<std::string> skipped;
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    const st::TensorInfo* info = file.find(name);
    if (!info || info->shape != target.sizes().vec()) {
      skipped.push_back(name);
      continue;
    }
    file.check_finite(*info);
    target.copy_(read_tensor(file, *info).to(target.scalar_type()));
  }
  return skipped;
}

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module, torch::ScalarType dtype) {
  std::map<std::string, torch::Tensor> out;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    out[name] = (t.is_floating_point() && dtype != torch::kFloat32) ? t.detach().to(dtype) : t.detach();
  };
  for (const auto& p : module.named_parameters()) add(p.key(), p.value());
  for (const auto& b : module.named_buffers()) add(b.key(), b.value());
  return out;
}

void load_weights(torch::nn::Module& module, const st::File& file) {
  const std::string& label = file.label();
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : module.named_parameters()) targets[p.key()] = p.value();
  for (const auto& b : module.named_buffers()) targets[b.key()] = b.value();

  // Check everything first: a model is loaded whole or not at all.
  std::vector<std::string> missing, extra;
  for (const auto& [name, target] : targets) {
    const st::TensorInfo* info = file.find(name);
    if (!info) {
      missing.push_back(name + " " + shape_str(target.sizes()));
      continue;
    }
    if (info->shape != target.sizes().vec())
      throw InputError(label + ": " + name + " has shape " + shape_str(info->shape) + ", the config expects " +
                       shape_str(target.sizes()) + " (are model.json's flags those of this checkpoint?)");
    const auto type = scalar_type_of(info->dtype, label + ": tensor '" + name + "'");
    if (c10::isFloatingType(type) != target.is_floating_point())
      throw InputError(label + ": " + name + " has dtype " + st::dtype_name(info->dtype) + ", expected a " +
                       (target.is_floating_point() ? "floating-point" : "integer") + " tensor");
    file.check_finite(*info);
  }
  for (const auto& info : file.tensors())
    if (!targets.count(info.name)) extra.push_back(info.name);
  auto list = [](const std::vector<std::string>& names) {
    std::string s;
    for (size_t i = 0; i < names.size() && i < 5; ++i) s += (i ? ", " : "") + names[i];
    if (names.size() > 5) s += ", ... (" + std::to_string(names.size()) + " in all)";
    return s;
  };
  if (!missing.empty())
    throw InputError(label + ": missing " + std::to_string(missing.size()) + " tensor(s) the config needs: " + list(missing) +
                     " (is model.json's kind / flags right for these weights?)");
  if (!extra.empty())
    throw InputError(label + ": " + std::to_string(extra.size()) + " tensor(s) the config does not have: " + list(extra) +
                     " (is model.json's kind / flags right for these weights?)");

  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto src = read_tensor(file, *file.find(name));
    target.copy_(src.to(target.scalar_type()));
  }
}

}  // namespace dsk
