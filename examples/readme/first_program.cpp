// The README's first program: build the FashionCNN and run one training step.
#include <minicnn/minicnn.hpp>

#include <iostream>

int main() {
  using namespace minicnn;
  set_num_threads(2);
  models::FashionCNN model(/*seed=*/0);  // PyTorch's default init, seeded
  Tensor<float> x({64, 1, 28, 28});      // NCHW
  x.uniform(-1.f, 1.f, /*seed=*/1);
  std::vector<int> y(64, 3);
  CrossEntropyLoss loss;
  Adam opt(model.parameters(), /*lr=*/1e-3);
  CosineAnnealingLR sched(opt, /*T_max=*/10);
  model.train();
  Tensor<float> logits = model.forward(x);  // [64, 10]
  float l = loss.forward(logits, y);
  opt.zero_grad();
  model.backward(loss.backward());
  opt.step();
  sched.step();
  std::cout << l << " " << model.num_parameters() << "\n";  // ~2.3 74602
}
