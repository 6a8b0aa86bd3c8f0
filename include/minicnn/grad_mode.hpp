#pragma once
// Whether forward passes keep what a backward pass needs: PyTorch's torch.no_grad() (in C++,
// torch::NoGradGuard). Inference that will never call backward() says so:
//
//   minicnn::NoGradGuard no_grad;   // until the end of the scope, on this thread
//   const auto& logits = model.forward(images);
//
// Under the guard a layer may skip the state backward() reads (MaxPool2d's argmax) and a
// container may fuse layers whose backward passes need the tensors between them (a Conv2d applies
// the 2x2 max-pool after it as it stores its output: see Sequential). The results are the same
// bits as with gradients enabled. A backward() after such a forward pass throws minicnn::error
// instead of returning stale gradients.
//
// The switch is per thread, as PyTorch's, and guards nest: each restores what it found.

namespace minicnn {

namespace detail {
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
}  // namespace detail

// False inside a NoGradGuard's scope on this thread.
inline bool grad_enabled() { return detail::grad_mode_flag(); }

class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_enabled()) { detail::grad_mode_flag() = false; }
  ~NoGradGuard() { detail::grad_mode_flag() = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace minicnn
