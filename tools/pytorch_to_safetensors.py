#!/usr/bin/python3
"""Converts a PyTorch state_dict (a torch.save file) into a safetensors file minicnn loads.

    /usr/bin/python3 tools/pytorch_to_safetensors.py model.pt model.safetensors
    /usr/bin/python3 tools/pytorch_to_safetensors.py checkpoint.pt model.safetensors --key model_state_dict
    /usr/bin/python3 tools/pytorch_to_safetensors.py model.pt model64.safetensors --dtype float64

Then in C++: minicnn::io::load_safetensors(model, "model.safetensors"). Tensor names are kept
as they are ("feature_extractor.0.weight", "layer1.0.bn1.running_mean"), which is how minicnn
names parameters and buffers too.

BatchNorm's num_batches_tracked, an int64 scalar [] in PyTorch, becomes what minicnn stores: a
[1] tensor of the model's floating type (--dtype, else that of the state's floating tensors),
exact up to 2^24 batches in float32 (a larger count is an error). safetensors_to_pytorch.py
converts it back.

Needs Debian's python3-torch and numpy only (no safetensors package). The writer,
write_safetensors(), needs numpy only; tests import it. Format (see docs/formats.md): u64
little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
{str: str}}, padded with spaces to a multiple of 8 bytes, then each tensor's bytes, C order,
little-endian. The file is written atomically (temporary file + fsync + rename).
"""

import argparse
import collections
import json
import os
import struct
import sys
import tempfile

import numpy as np

# numpy dtype -> safetensors dtype. bfloat16 has no numpy type: pass a RawTensor for it.
NUMPY_DTYPES = {
    np.dtype("float16"): "F16", np.dtype("float32"): "F32", np.dtype("float64"): "F64",
    np.dtype("int8"): "I8", np.dtype("int16"): "I16", np.dtype("int32"): "I32", np.dtype("int64"): "I64",
    np.dtype("uint8"): "U8", np.dtype("uint16"): "U16", np.dtype("uint32"): "U32", np.dtype("uint64"): "U64",
    np.dtype("bool"): "BOOL",
}

# A tensor given as raw little-endian bytes (for dtypes numpy lacks, such as BF16).
RawTensor = collections.namedtuple("RawTensor", ["dtype", "shape", "data"])


def _entry(name, value):
    if isinstance(value, RawTensor):
        return value.dtype, [int(d) for d in value.shape], bytes(value.data)
    array = np.asarray(value)
    if array.dtype.newbyteorder("=") not in NUMPY_DTYPES:
        raise ValueError(f"{name}: numpy dtype {array.dtype} has no safetensors equivalent")
    dtype_name = NUMPY_DTYPES[array.dtype.newbyteorder("=")]
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return dtype_name, [int(d) for d in array.shape], np.ascontiguousarray(little).tobytes(order="C")


def safetensors_bytes(tensors, metadata=None):
    """The bytes of a safetensors file: tensors is an ordered dict name -> numpy array or
    RawTensor, written in that order; metadata a dict of str -> str."""
    header, chunks, offset = {}, [], 0
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError(f"__metadata__: keys and values must be strings, got {key!r}: {value!r}")
        header["__metadata__"] = dict(metadata)
    for name, value in tensors.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"tensor names must be non-empty strings, got {name!r}")
        if name == "__metadata__":
            raise ValueError('"__metadata__" is reserved and cannot name a tensor')
        dtype_name, shape, data = _entry(name, value)
        header[name] = {"dtype": dtype_name, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    # Pad so the data section starts 8-byte aligned, as the reference implementation does.
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_atomically(path, data):
    """Writes bytes to path via a temporary file in the same directory, fsync and rename."""
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".tmp-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_safetensors(path, tensors, metadata=None):
    write_atomically(path, safetensors_bytes(tensors, metadata))


def _state_dict_from(obj, key, source):
    import torch

    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise SystemExit(f"{source}: no entry {key!r} (top-level keys: {list(obj) if isinstance(obj, dict) else type(obj).__name__})")
        obj = obj[key]
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise SystemExit(f"{source}: expected a state_dict (a dict of tensors), found {type(obj).__name__}")
    not_tensors = [name for name, value in obj.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        nested = [name for name, value in obj.items() if isinstance(value, dict)]
        hint = f"; pick the state_dict with --key (candidates: {', '.join(nested)})" if nested else ""
        raise SystemExit(f"{source}: entries {not_tensors[:5]} are not tensors{hint}")
    return obj


def torch_to_entry(name, tensor, dtype):
    """A numpy array or RawTensor for a torch tensor, optionally converting floating types."""
    import torch

    tensor = tensor.detach().to("cpu").contiguous()
    if dtype != "keep" and tensor.is_floating_point():
        tensor = tensor.to(getattr(torch, dtype))
    if tensor.dtype == torch.bfloat16:
        return RawTensor("BF16", list(tensor.shape), tensor.view(torch.int16).numpy().astype("<i2").tobytes())
    if tensor.is_complex() or tensor.is_quantized:
        raise SystemExit(f"{name}: dtype {tensor.dtype} has no safetensors equivalent")
    return tensor.numpy()


def is_num_batches_tracked(name):
    return name == "num_batches_tracked" or name.endswith(".num_batches_tracked")


def floating_dtype(state, dtype):
    """The numpy floating type minicnn's model will have: --dtype, else the state's floating one."""
    if dtype != "keep":
        return np.dtype(dtype)
    for value in state.values():
        if value.is_floating_point():
            return np.dtype(str(value.dtype).replace("torch.", ""))
    return np.dtype("float32")


def num_batches_tracked_entry(name, tensor, float_dtype):
    """PyTorch's int64 [] counter as minicnn's [1] tensor of the model's floating type."""
    if tensor.is_floating_point() or tensor.numel() != 1:
        raise SystemExit(f"{name}: expected PyTorch's integer scalar, found {tensor.dtype} {list(tensor.shape)}")
    count = int(tensor.item())
    exact_limit = 2 ** (np.finfo(float_dtype).nmant + 1)
    if not 0 <= count <= exact_limit:
        raise SystemExit(f"{name}: {count} batches is not exact in {float_dtype} (at most {exact_limit})")
    return np.array([count], dtype=float_dtype)


def state_entries(state, dtype):
    """name -> numpy array or RawTensor for a whole state_dict, num_batches_tracked converted."""
    float_dtype = floating_dtype(state, dtype)
    return collections.OrderedDict(
        (name, num_batches_tracked_entry(name, value, float_dtype) if is_num_batches_tracked(name)
         else torch_to_entry(name, value, dtype)) for name, value in state.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="a torch.save file holding a state_dict (or a module, with --allow-pickle)")
    parser.add_argument("output", help="the safetensors file to write")
    parser.add_argument("--key", help="take the state_dict from this entry of a checkpoint dict")
    parser.add_argument("--dtype", choices=["keep", "float32", "float64"], default="keep",
                        help="convert floating-point tensors (minicnn loads F32 into float models, F64 into double)")
    parser.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="a __metadata__ entry (repeatable)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load with weights_only=False (runs pickled code: only for files you trust)")
    args = parser.parse_args(argv)

    import torch

    obj = torch.load(args.input, map_location="cpu", weights_only=not args.allow_pickle)
    state = _state_dict_from(obj, args.key, args.input)
    tensors = state_entries(state, args.dtype)
    metadata = {}
    for item in args.metadata:
        key, separator, value = item.partition("=")
        if not separator:
            raise SystemExit(f"--metadata {item!r}: expected KEY=VALUE")
        metadata[key] = value
    metadata.setdefault("format", "pt")
    write_safetensors(args.output, tensors, metadata)
    print(f"wrote {args.output}: {len(tensors)} tensors, {os.path.getsize(args.output)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
