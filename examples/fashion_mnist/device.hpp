#pragma once
// --device: where the demo computes. The model's parameters are moved there once; each batch
// is copied there from the (host) data loader, and the few values the program reads on the
// host (logits for accuracy, weights to save) are copied back.
#include <deque>
#include <string>

#include "minicnn/error.hpp"
#include "minicnn/ops/dispatch.hpp"
#include "minicnn/tensor.hpp"

namespace fashion_mnist {

// The device named by --device, or a one-line error saying why CUDA cannot be used (no CUDA
// backend compiled in, or no usable GPU / driver on this machine).
inline minicnn::Device parse_device(const std::string& device) {
  if (device == "cpu") return minicnn::Device::cpu;
  if (!minicnn::cuda_available()) throw minicnn::error("--device cuda: " + minicnn::cuda_status() + "; use --device cpu");
  return minicnn::Device::cuda;
}

// `tensor` itself when it lives on the CPU, else a host copy kept alive in `keep`.
template <typename T>
const minicnn::Tensor<T>& on_host(const minicnn::Tensor<T>& tensor, std::deque<minicnn::Tensor<T>>& keep) {
  if (tensor.device() == minicnn::Device::cpu) return tensor;
  keep.push_back(tensor.copy_to(minicnn::Device::cpu));
  return keep.back();
}

// `host` itself on the CPU, else `staging` (kept on `device`) holding a copy of it.
template <typename T>
const minicnn::Tensor<T>& on_device(const minicnn::Tensor<T>& host, minicnn::Tensor<T>& staging, minicnn::Device device) {
  if (device == minicnn::Device::cpu) return host;
  if (staging.device() != device) staging.resize(host.shape(), device);
  staging.copy_from(host);
  return staging;
}

}  // namespace fashion_mnist
