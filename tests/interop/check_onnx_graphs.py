#!/usr/bin/python3
"""onnx.checker on minicnn's ONNX export of graph models (run by run_interop.sh onnx_graphs).

    check_onnx_graphs.py MODEL.onnx OUTPUT.safetensors

Checks the model with onnx.checker.check_model(full_check=True) (strict shape inference), and
that the inferred shape of the output "output" is minicnn's output shape with a symbolic batch.
Exits 1 on failure.
"""
import os
import sys

import onnx
from onnx import shape_inference

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from safetensors_to_pytorch import read_arrays  # noqa: E402


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def main():
    path, output_path = sys.argv[1], sys.argv[2]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    graph = shape_inference.infer_shapes(model, check_type=True, strict_mode=True).graph
    expected = ["N"] + list(read_arrays(output_path)["output"].shape[1:])
    found = dims(graph.output[0])
    print(f"onnx {onnx.__version__}: {os.path.basename(path)}: check_model(full_check=True) passed; "
          f"{len(graph.node)} nodes ({' '.join(sorted(set(n.op_type for n in graph.node)))}); output {found}")
    if [o.name for o in graph.output] != ["output"] or found != expected:
        print(f"FAIL: expected the output 'output' {expected}, found {[(o.name, dims(o)) for o in graph.output]}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
