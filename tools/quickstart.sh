#!/usr/bin/env bash
# The README's first quick-start command: install the dependencies (Debian 12), build Release,
# and train the tutorial's FashionCNN on the real Fashion-MNIST with the tutorial's recipe.
# Extra arguments go to `fashion_mnist train` (e.g. --epochs 1, --recipe best).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target fashion_mnist
exec build/examples/fashion_mnist train "$@"
