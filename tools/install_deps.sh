#!/usr/bin/env bash
# Installs what minicnn needs on Debian 12, from Debian's archive only.
#   install_deps.sh          build, tests, demo and the real data set
#   install_deps.sh --ci     also the tools the CI run uses (fuzzers, interop checks, ccache)
set -euo pipefail
# libcli11-dev and nlohmann-json3-dev: the fashion_mnist demo's command line and JSON files;
# pkg-config: the consumer test of the installed minicnn.pc.
packages=(cmake g++ make pkg-config libeigen3-dev catch2 libstb-dev zlib1g-dev libbenchmark-dev libcli11-dev
          nlohmann-json3-dev dataset-fashion-mnist)
if [ "${1:-}" = "--ci" ]; then
  # clang + compiler-rt: libFuzzer targets; python3-torch/torchvision/onnx + nodejs/npm: model-file interop
  # checks against PyTorch (torchvision: the ResNet and SE twins), onnx.checker and onnxruntime.
  packages+=(ccache clang-14 libclang-rt-14-dev python3-numpy python3-torch python3-torchvision python3-onnx)
  # OpenMPI: the distributed suite (tests/mpi/) runs under a real mpirun.
  packages+=(openmpi-bin libopenmpi-dev)
  # Node.js may come from elsewhere (NodeSource ships npm inside its nodejs, which conflicts
  # with Debian's npm): install Debian's only when no npm is on the PATH.
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
