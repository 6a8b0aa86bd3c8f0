#!/usr/bin/python3
"""Converts a safetensors file (for example minicnn's model.safetensors) into a PyTorch state_dict.

    /usr/bin/python3 tools/safetensors_to_pytorch.py model.safetensors model.pt
    /usr/bin/python3 tools/safetensors_to_pytorch.py model.safetensors --list

Then in PyTorch: model.load_state_dict(torch.load("model.pt")). The names minicnn writes
("feature_extractor.0.weight", "layer1.0.bn1.running_var") are the PyTorch models' state_dict
names (tools/fashion_cnn_torch.py, tools/resnet_torch.py).

BatchNorm's num_batches_tracked, a [1] float tensor in minicnn, becomes PyTorch's int64 scalar []
(a value that is not a whole number is an error).

Needs Debian's python3-torch and numpy only (no safetensors package). The reader,
read_safetensors(), needs numpy only; tests import it. It checks what minicnn's reader checks:
header length at most 100 MB and inside the file, valid JSON without duplicate keys, known
dtypes, integer shapes, offsets inside the data section matching dtype and shape, tensors
covering the data section without overlaps or holes.
"""

import argparse
import collections
import io
import json
import struct
import sys

import numpy as np

from pytorch_to_safetensors import write_atomically  # same directory (the script's, on sys.path)

MAX_HEADER_BYTES = 100_000_000
# safetensors dtype -> (numpy dtype of the stored bytes, element size)
DTYPES = {
    "BOOL": ("?", 1), "U8": ("u1", 1), "I8": ("i1", 1), "I16": ("<i2", 2), "U16": ("<u2", 2),
    "F16": ("<f2", 2), "BF16": ("<u2", 2), "I32": ("<i4", 4), "U32": ("<u4", 4), "F32": ("<f4", 4),
    "F64": ("<f8", 8), "I64": ("<i8", 8), "U64": ("<u8", 8), "F8_E5M2": ("u1", 1), "F8_E4M3": ("u1", 1),
}


class SafetensorsError(ValueError):
    pass


def _no_duplicates(pairs):
    result = collections.OrderedDict()
    for key, value in pairs:
        if key in result:
            raise SafetensorsError(f"duplicate key {key!r} in the header")
        result[key] = value
    return result


def _not_json(name):
    raise SafetensorsError(f"{name} is not JSON")


def _non_negative_int(value, what):
    if type(value) is not int or value < 0:
        raise SafetensorsError(f"{what}: expected a non-negative integer, found {value!r}")
    return value


def parse_safetensors(data, source="safetensors"):
    """Validates a file's bytes. Returns (tensors, metadata): tensors is an ordered dict name ->
    (dtype name, shape, numpy array of the stored values), in data order; BF16 and F8 values
    come as their raw unsigned integers."""
    def fail(message):
        raise SafetensorsError(f"{source}: {message}")

    if len(data) < 8:
        fail(f"the file is {len(data)} bytes long, too short for the 8-byte header length")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > MAX_HEADER_BYTES:
        fail(f"header length {header_length} exceeds the limit of {MAX_HEADER_BYTES} bytes")
    if header_length > len(data) - 8:
        fail(f"header length {header_length} exceeds the {len(data) - 8} bytes that follow the length prefix")
    header_bytes = data[8:8 + header_length]
    if not header_bytes.startswith(b"{"):
        fail("expected the header to start with '{'")
    try:
        header = json.loads(header_bytes.decode("utf-8"), object_pairs_hook=_no_duplicates,
                            parse_constant=_not_json)
    except (UnicodeDecodeError, json.JSONDecodeError, SafetensorsError) as problem:
        fail(f"header: {problem}")
    if not isinstance(header, dict):
        fail("header: expected a JSON object")
    data_section = memoryview(data)[8 + header_length:]
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        fail("__metadata__: expected an object of strings")
    entries = []
    for name, info in header.items():
        if not name:
            fail("a tensor has an empty name")
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            fail(f"{name}: expected exactly the fields dtype, shape and data_offsets, found {info!r}")
        if info["dtype"] not in DTYPES:
            fail(f"{name}: unknown dtype {info['dtype']!r}")
        if not isinstance(info["shape"], list) or not isinstance(info["data_offsets"], list) or len(info["data_offsets"]) != 2:
            fail(f"{name}: shape must be a list and data_offsets a list of 2 numbers")
        shape = [_non_negative_int(d, f"{source}: {name}: shape") for d in info["shape"]]
        begin, end = (_non_negative_int(o, f"{source}: {name}: data_offsets") for o in info["data_offsets"])
        if begin > end or end > len(data_section):
            fail(f"{name}: data_offsets [{begin}, {end}] lie outside the {len(data_section)}-byte data section")
        numpy_dtype, size = DTYPES[info["dtype"]]
        count = int(np.prod(shape, dtype=object)) if shape else 1
        if count * size != end - begin:
            fail(f"{name}: data_offsets [{begin}, {end}] hold {end - begin} bytes, but dtype {info['dtype']} "
                 f"with shape {shape} needs {count * size}")
        entries.append((begin, end, name, info["dtype"], shape, numpy_dtype))
    entries.sort(key=lambda e: (e[0], e[1]))
    covered, previous = 0, None
    for begin, end, name, *_ in entries:
        if begin < covered:
            fail(f"tensors {previous} and {name} overlap")
        if begin > covered:
            fail(f"bytes [{covered}, {begin}) of the data section belong to no tensor")
        covered, previous = end, name
    if covered != len(data_section):
        fail(f"bytes [{covered}, {len(data_section)}) at the end of the data section belong to no tensor")
    tensors = collections.OrderedDict()
    for begin, end, name, dtype_name, shape, numpy_dtype in entries:
        array = np.frombuffer(data_section[begin:end], dtype=numpy_dtype).reshape(shape).copy()
        tensors[name] = (dtype_name, shape, array)
    return tensors, metadata


def read_safetensors(path):
    """(tensors, metadata) of a file; see parse_safetensors."""
    with open(path, "rb") as source:
        return parse_safetensors(source.read(), path)


def read_arrays(path):
    """A file's tensors as an ordered dict name -> numpy array (F16/F32/F64 and integers)."""
    tensors, _ = read_safetensors(path)
    arrays = collections.OrderedDict()
    for name, (dtype_name, _, array) in tensors.items():
        if dtype_name in ("BF16", "F8_E5M2", "F8_E4M3"):
            raise SafetensorsError(f"{path}: {name}: {dtype_name} has no numpy type")
        arrays[name] = array
    return arrays


def to_torch(name, dtype_name, array, dtype):
    import torch

    if dtype_name == "BF16":
        tensor = torch.from_numpy(array.astype(np.int16)).view(torch.bfloat16)
    elif dtype_name in ("U16", "U32", "U64", "F8_E5M2", "F8_E4M3"):
        raise SystemExit(f"{name}: dtype {dtype_name} has no PyTorch equivalent here")
    else:
        tensor = torch.from_numpy(array.astype(array.dtype.newbyteorder("=")))
    if dtype != "keep" and tensor.is_floating_point():
        tensor = tensor.to(getattr(torch, dtype))
    return tensor


def num_batches_tracked_to_torch(name, dtype_name, array):
    """minicnn's [1] float counter as PyTorch's int64 scalar."""
    import torch

    if array.size != 1 or dtype_name not in ("F32", "F64", "I64"):
        raise SystemExit(f"{name}: expected minicnn's [1] counter, found {dtype_name} {list(array.shape)}")
    value = float(array.reshape(-1)[0])
    if not (value >= 0 and value == int(value)):
        raise SystemExit(f"{name}: {value} is not a batch count")
    return torch.tensor(int(value), dtype=torch.int64)


def state_dict_from(tensors, dtype="keep"):
    """An ordered state_dict from parse_safetensors' tensors, num_batches_tracked converted."""
    return collections.OrderedDict(
        (name, num_batches_tracked_to_torch(name, dtype_name, array)
         if name == "num_batches_tracked" or name.endswith(".num_batches_tracked")
         else to_torch(name, dtype_name, array, dtype))
        for name, (dtype_name, _, array) in tensors.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="the safetensors file to read")
    parser.add_argument("output", nargs="?", help="the torch.save file to write (a state_dict)")
    parser.add_argument("--dtype", choices=["keep", "float32", "float64"], default="keep",
                        help="convert floating-point tensors")
    parser.add_argument("--list", action="store_true", help="print the tensors and metadata")
    args = parser.parse_args(argv)
    if not args.output and not args.list:
        parser.error("give an output file, or --list")

    try:
        tensors, metadata = read_safetensors(args.input)
    except SafetensorsError as problem:
        raise SystemExit(str(problem))
    if args.list:
        for key, value in metadata.items():
            print(f"__metadata__ {key} = {value}")
        for name, (dtype_name, shape, _) in tensors.items():
            print(f"{name} {dtype_name} {shape}")
    if args.output:
        import torch  # imported here so that --list and the numpy-only reader work without torch

        state = state_dict_from(tensors, args.dtype)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_atomically(args.output, buffer.getvalue())
        print(f"wrote {args.output}: {len(state)} tensors", file=sys.stderr)


if __name__ == "__main__":
    main()
