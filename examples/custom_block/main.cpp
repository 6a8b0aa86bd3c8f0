// Write your own block: a module is a constructor that registers its children, and a forward /
// backward that calls them. Everything else (parameters, buffers, state_dict names, train/eval,
// to(device), zero_grad, repr, safetensors save/load) comes from minicnn::Module.
//
// This block is a pre-activation residual unit, y = x + conv2(relu(bn2(conv1(relu(bn1(x)))))),
// the same as this PyTorch module:
//
//   class PreActBlock(nn.Module):
//       def __init__(self, channels):
//           super().__init__()
//           self.bn1 = nn.BatchNorm2d(channels)
//           self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
//           self.bn2 = nn.BatchNorm2d(channels)
//           self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
//       def forward(self, x):
//           out = self.conv1(F.relu(self.bn1(x)))
//           return x + self.conv2(F.relu(self.bn2(out)))
//
// The program trains a small network built around it for a few steps on a fixed batch and exits
// non-zero unless the loss falls (CTest runs it).
#include <minicnn/minicnn.hpp>

#include <cstdio>
#include <memory>

using namespace minicnn;

template <typename T = float>
class PreActBlock final : public Module<T> {
 public:
  PreActBlock(std::int64_t channels, Generator& gen)
      : bn1_(this->register_module("bn1", std::make_unique<BatchNorm2d<T>>(channels))),
        conv1_(this->register_module("conv1", std::make_unique<Conv2d<T>>(channels, channels, 3, 1, 1, false, gen))),
        bn2_(this->register_module("bn2", std::make_unique<BatchNorm2d<T>>(channels))),
        conv2_(this->register_module("conv2", std::make_unique<Conv2d<T>>(channels, channels, 3, 1, 1, false, gen))) {}

  std::string type_name() const override { return "PreActBlock"; }
  Shape output_shape(const Shape& input) const override { return conv2_.output_shape(conv1_.output_shape(input)); }

  // Each child keeps its input until backward, so each use of ReLU is its own module.
  const Tensor<T>& forward(const Tensor<T>& input) override {
    const Tensor<T>& branch =
        conv2_.forward(relu2_.forward(bn2_.forward(conv1_.forward(relu1_.forward(bn1_.forward(input))))));
    ops::add(input, branch, output_);
    return output_;
  }

  // The gradient reaches the input along the branch and along the identity: their sum.
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const Tensor<T>& grad_branch =
        bn1_.backward(relu1_.backward(conv1_.backward(bn2_.backward(relu2_.backward(conv2_.backward(grad_output))))));
    ops::add(grad_output, grad_branch, grad_input_);
    return grad_input_;
  }

 private:
  BatchNorm2d<T>& bn1_;
  Conv2d<T>& conv1_;
  BatchNorm2d<T>& bn2_;
  Conv2d<T>& conv2_;
  ReLU<T> relu1_, relu2_;  // stateless: not registered, as F.relu is not in PyTorch
  Tensor<T> output_, grad_input_;
};

int main() {
  set_num_threads(2);
  Generator gen(0);
  Sequential<float> net;
  net.emplace<Conv2d<float>>(1, 16, 3, 1, 1, false, gen);
  net.add("block", std::make_unique<PreActBlock<float>>(16, gen));
  net.emplace<AdaptiveAvgPool2d<float>>(1);
  net.emplace<Flatten<float>>();
  net.emplace<Linear<float>>(16, 10, true, gen);
  std::printf("%s\n", net.repr().c_str());
  for (const auto& entry : net.state())
    std::printf("  %s %s\n", entry.name.c_str(), entry.tensor->shape().str().c_str());

  Tensor<float> images({32, 1, 12, 12});
  images.uniform(-1.f, 1.f, /*seed=*/1);
  std::vector<int> labels(32);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % 10);
  CrossEntropyLoss<float> loss;
  Adam<float> optimizer(net.parameters(), 1e-2);
  net.train();
  float first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    last = loss.forward(net.forward(images), labels);
    if (step == 0) first = last;
    optimizer.zero_grad();
    net.backward(loss.backward());
    optimizer.step();
  }
  std::printf("loss %.4f -> %.4f over 20 steps\n", first, last);
  return last < 0.8f * first ? 0 : 1;
}
