#!/usr/bin/python3
"""onnx.checker on minicnn's ONNX export (run by run_interop.sh).

    check_onnx.py MODEL.onnx WEIGHTS.safetensors

Checks the model with onnx.checker.check_model(full_check=True) (which runs strict shape
inference), that inference gives the output "logits" the shape [N, 10], and that onnx's own
protobuf decoding of every initializer equals the weights in WEIGHTS (every tensor of the state
but BatchNorm's num_batches_tracked, which inference does not use). Exits 1 on failure.
"""
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from safetensors_to_pytorch import read_arrays  # noqa: E402


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def main():
    path, weights_path = sys.argv[1], sys.argv[2]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    print(f"onnx {onnx.__version__}: check_model(full_check=True) passed: ir_version {model.ir_version}, "
          f"opset {[(o.domain, o.version) for o in model.opset_import]}")
    inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    graph = inferred.graph
    print("nodes:", " ".join(node.op_type for node in graph.node))
    print("input", graph.input[0].name, dims(graph.input[0]), "output", graph.output[0].name, dims(graph.output[0]))
    failures = []
    if [i.name for i in graph.input] != ["input"] or dims(graph.input[0]) != ["N", 1, 28, 28]:
        failures.append(f"input: expected input [N, 1, 28, 28], found {[(i.name, dims(i)) for i in graph.input]}")
    if [o.name for o in graph.output] != ["logits"] or dims(graph.output[0]) != ["N", 10]:
        failures.append(f"output: expected logits [N, 10], found {[(o.name, dims(o)) for o in graph.output]}")
    weights = {name: value for name, value in read_arrays(weights_path).items()
               if not name.endswith("num_batches_tracked")}
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    if set(initializers) != set(weights):
        failures.append(f"initializers {sorted(initializers)} differ from the weights {sorted(weights)}")
    for name, value in weights.items():
        if name in initializers and not np.array_equal(initializers[name], value):
            failures.append(f"initializer {name} differs from the weights")
    for failure in failures:
        print("FAIL:", failure)
    if failures:
        raise SystemExit(1)
    print(f"{len(initializers)} initializers equal the safetensors weights bit for bit")


if __name__ == "__main__":
    main()
