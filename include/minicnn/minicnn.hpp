#pragma once
// minicnn: everything public, in one include.
#include "minicnn/config.hpp"
#include "minicnn/conv_algorithm.hpp"
#include "minicnn/grad_mode.hpp"
#include "minicnn/error.hpp"
#include "minicnn/random.hpp"
#include "minicnn/tensor.hpp"

#include "minicnn/ops/dispatch.hpp"

#include "minicnn/layers/activation.hpp"
#include "minicnn/layers/adaptive_avg_pool2d.hpp"
#include "minicnn/layers/adaptive_max_pool2d.hpp"
#include "minicnn/layers/avg_pool2d.hpp"
#include "minicnn/layers/batchnorm.hpp"
#include "minicnn/layers/conv2d.hpp"
#include "minicnn/layers/dropout.hpp"
#include "minicnn/layers/flatten.hpp"
#include "minicnn/layers/init.hpp"
#include "minicnn/layers/int_pair.hpp"
#include "minicnn/layers/linear.hpp"
#include "minicnn/layers/maxpool2d.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/layers/relu.hpp"
#include "minicnn/layers/residual.hpp"
#include "minicnn/layers/resnet_blocks.hpp"
#include "minicnn/layers/sequential.hpp"
#include "minicnn/layers/squeeze_excitation.hpp"

#include "minicnn/loss.hpp"
#include "minicnn/optim/adam.hpp"
#include "minicnn/optim/cosine_annealing.hpp"
#include "minicnn/optim/gradient_accumulator.hpp"
#include "minicnn/optim/param_groups.hpp"
#include "minicnn/optim/schedules.hpp"
#include "minicnn/optim/sgd.hpp"

#include "minicnn/metrics.hpp"

#include "minicnn/models/fashion_cnn.hpp"
#include "minicnn/models/fashion_cnn_se.hpp"
#include "minicnn/models/resnet.hpp"

#include "minicnn/data/dataset.hpp"
#include "minicnn/data/fashion_mnist.hpp"
#include "minicnn/data/idx.hpp"
#include "minicnn/data/loader.hpp"
#include "minicnn/data/transforms.hpp"

#include "minicnn/io/atomic_file.hpp"
#include "minicnn/io/onnx.hpp"
#include "minicnn/io/safetensors.hpp"
// io/image.hpp and the optional viz/ headers (canvas.hpp, font.hpp, plot.hpp) are left out on
// purpose: they compile stb_image(_write) from libstb-dev into the including file; include them
// where needed.
