// same_weights A.safetensors B.safetensors [--parameters-only]: whether two model.safetensors files
// written by the fashion_mnist demo hold bit-identical weights. The model is named by the files'
// metadata; every tensor of its state is compared, or with --parameters-only its parameters alone
// (a BatchNorm model's running statistics are rank 0's own in a distributed run; see
// docs/distributed.md). Prints one line of evidence; exits 0 when equal, 1 when not, 2 on bad input.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "../../examples/fashion_mnist/model.hpp"
#include "minicnn/io/safetensors.hpp"

int main(int argc, char** argv) {
  const bool parameters_only = argc == 4 && std::string(argv[3]) == "--parameters-only";
  if (argc != 3 && !parameters_only) {
    std::fprintf(stderr, "usage: same_weights A.safetensors B.safetensors [--parameters-only]\n");
    return 2;
  }
  try {
    const minicnn::io::SafetensorsFile a = minicnn::io::SafetensorsFile::read(argv[1]);
    const minicnn::io::SafetensorsFile b = minicnn::io::SafetensorsFile::read(argv[2]);
    const std::string name = fashion_mnist::identify_model(a);
    if (fashion_mnist::identify_model(b) != name)
      throw minicnn::error("the files hold different models (" + name + ", " + fashion_mnist::identify_model(b) + ")");
    fashion_mnist::Model model = fashion_mnist::make_model(name, 0);
    long long compared = 0, values = 0, skipped = 0, differing = 0;
    for (const auto& entry : model.module().state()) {
      if (parameters_only && !entry.is_parameter) {
        ++skipped;
        continue;
      }
      const minicnn::io::TensorInfo &left = a.info(entry.name), &right = b.info(entry.name);
      const bool same = left.dtype == right.dtype && left.shape == right.shape &&
                        std::memcmp(a.raw_data(left), b.raw_data(right), left.byte_size()) == 0;
      if (!same) {
        std::printf("differs: %s\n", entry.name.c_str());
        ++differing;
      }
      ++compared;
      values += entry.tensor->size();
    }
    const std::string skipped_text = skipped > 0 ? ", " + std::to_string(skipped) + " buffers skipped" : "";
    std::printf("%s: %lld tensors (%lld values) compared, %lld differ%s\n", name.c_str(), compared, values, differing,
                skipped_text.c_str());
    return differing == 0 ? 0 : 1;
  } catch (const std::exception& failure) {
    std::fprintf(stderr, "same_weights: %s\n", failure.what());
    return 2;
  }
}
