#!/usr/bin/env bash
# One interop check of minicnn's files against an independent tool, on 1,000 real
# Fashion-MNIST test images (250 for the ResNets, whose forward passes on 1,000 took most of the
# suite's time: weight layouts and graphs are wrong on every image or on none). Registered with
# CTest by tests/interop/CMakeLists.txt:
#
#   run_interop.sh prepare      DRIVER WORK_DIR [MODEL]  the data, the model trained a few steps, its
#                                                        logits and its ONNX export, in WORK_DIR
#   run_interop.sh pytorch      DRIVER WORK_DIR [MODEL]  PyTorch <-> minicnn weights, logits within 1e-4
#   run_interop.sh onnx_checker DRIVER WORK_DIR [MODEL]  onnx.checker.check_model(full_check=True)
#   run_interop.sh onnxruntime  DRIVER WORK_DIR [MODEL]  onnxruntime-node logits vs minicnn within 1e-4
# The three checks read a WORK_DIR that `prepare` filled (CTest runs it first: a fixture); a
# `prepare` that found no data or numpy leaves the reason in WORK_DIR/SKIPPED, and each check
# then skips with it.
#   run_interop.sh onnx_graphs  DRIVER WORK_DIR   graph models (residual blocks with SE; BatchNorm
#                                                 and every activation) on random input: onnx.checker,
#                                                 and onnxruntime-node vs minicnn within 1e-4 relative
#                                                 (needs both tools, not the Fashion-MNIST data)
#
# MODEL: fashion_cnn (the default), fashion_cnn_se, resnet18, resnet18_se, fashion_resnet or
# fashion_resnet_se (interop_driver's --model; tools/resnet_torch.py's MODELS on the PyTorch side,
# which needs torchvision).
#
# Exit 0: passed; 1: failed; 77: SKIPPED (CTest's SKIP_RETURN_CODE) because a tool or the data
# is missing, with the reason printed on the first line of the output.
# Environment: MINICNN_PYTHON (default /usr/bin/python3, Debian's, with python3-torch,
# python3-numpy, python3-onnx), MINICNN_DATA (default /usr/share/datasets/fashion-mnist),
# NODE_PATH (where onnxruntime-node is installed, if not in a node_modules above this folder).
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  echo "usage: $0 prepare|pytorch|onnx_checker|onnxruntime|onnx_graphs DRIVER WORK_DIR [MODEL]" >&2
  exit 2
fi
mode=$1
driver=$2
work=$3
model=${4:-fashion_cnn}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${MINICNN_PYTHON:-/usr/bin/python3}
data=${MINICNN_DATA:-/usr/share/datasets/fashion-mnist}

skip() {
  echo "SKIPPED: $*"
  # The setup step cannot skip (CTest would not run the checks): it leaves the reason for them.
  if [ "$mode" = prepare ]; then
    mkdir -p "$work"
    echo "$*" > "$work/SKIPPED"
    exit 0
  fi
  exit 77
}

[ -x "$python" ] || skip "$python not found (install Debian's python3, python3-numpy)"
"$python" -c 'import numpy' 2>/dev/null || skip "numpy is not importable by $python (apt-get install python3-numpy)"
need_onnx() {
  "$python" -c 'import onnx' 2>/dev/null || skip "onnx is not importable by $python (apt-get install python3-onnx)"
}
need_onnxruntime() {
  command -v node >/dev/null 2>&1 || skip "node not found (apt-get install nodejs)"
  (cd "$here" && node -e "require('onnxruntime-node')" >/dev/null 2>&1) ||
    skip "the npm package onnxruntime-node is not installed where node finds it (see docs/formats.md:" \
         "ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node@1.30.0 at the repository root," \
         "or set NODE_PATH)"
}
case $mode in
  pytorch)
    "$python" -c 'import torch' 2>/dev/null || skip "torch is not importable by $python (apt-get install python3-torch)"
    if [ "$model" != fashion_cnn ]; then
      "$python" -c 'import torchvision' 2>/dev/null ||
        skip "torchvision is not importable by $python (apt-get install python3-torchvision)"
    fi ;;
  onnx_checker) need_onnx ;;
  onnxruntime) need_onnxruntime ;;
  onnx_graphs) need_onnx; need_onnxruntime ;;
  prepare) ;;
  *)
    echo "run_interop: unknown check '$mode'" >&2
    exit 2 ;;
esac
if [ "$mode" != onnx_graphs ]; then
  ls "$data"/t10k-images*idx3-ubyte* >/dev/null 2>&1 ||
    skip "no Fashion-MNIST files in $data (apt-get install dataset-fashion-mnist, or set MINICNN_DATA)"
fi

case $work in
  "" | / | "$HOME") echo "run_interop: refusing to use '$work' as the work directory" >&2; exit 2 ;;
esac
if [ "$mode" = prepare ] || [ "$mode" = onnx_graphs ]; then
  rm -rf "$work"
  mkdir -p "$work"
fi
if [ "$mode" = onnx_graphs ]; then
  "$driver" export-onnx-graphs "$work"
  for model in residual_blocks activations; do
    "$python" "$here/check_onnx_graphs.py" "$work/$model.onnx" "$work/$model.output.safetensors"
    (cd "$here" && node "$here/check_onnxruntime_graphs.js" "$work/$model.onnx" "$work/$model.input.safetensors" \
       "$work/$model.output.safetensors")
  done
  echo "run_interop: $mode passed"
  exit 0
fi
if [ "$mode" = prepare ]; then
  test_count=1000
  case $model in resnet18* | fashion_resnet*) test_count=250 ;; esac
  "$python" "$here/prepare_data.py" "$data" "$work/data.safetensors" 1280 "$test_count"
  "$driver" --model "$model" train "$work/data.safetensors" "$work/minicnn.safetensors" \
    "$work/minicnn_logits.safetensors"
  "$driver" --model "$model" export-onnx "$work/minicnn.safetensors" "$work/model.onnx"
  touch "$work/READY"
  echo "run_interop: prepared $model in $work"
  exit 0
fi
[ -f "$work/SKIPPED" ] && skip "$(cat "$work/SKIPPED")"
if [ ! -f "$work/READY" ]; then
  echo "run_interop: $work was not prepared (run_interop.sh prepare DRIVER $work $model first;" \
       "ctest does it: interop.prepare.$model)" >&2
  exit 1
fi

case $mode in
  pytorch)
    "$python" "$here/check_pytorch.py" "$work" "$driver" "$model" ;;
  onnx_checker)
    "$python" "$here/check_onnx.py" "$work/model.onnx" "$work/minicnn.safetensors" ;;
  onnxruntime)
    (cd "$here" && node "$here/check_onnxruntime.js" "$work/model.onnx" "$work/data.safetensors" \
       "$work/minicnn_logits.safetensors") ;;
esac
echo "run_interop: $mode ($model) passed"
