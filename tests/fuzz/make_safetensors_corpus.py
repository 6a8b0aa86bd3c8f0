#!/usr/bin/python3
"""Writes the seed corpus of the safetensors fuzz target into tests/fuzz/corpus/fuzz_safetensors/.

    /usr/bin/python3 tests/fuzz/make_safetensors_corpus.py

Small valid files (F32, F64, other dtypes, metadata, escapes, zero-size and scalar tensors,
tensors listed out of data order) and one file per malformed case the reader must reject.
Deterministic: re-running reproduces the corpus byte for byte. Standard library only.
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_safetensors")
SIZES = {"F32": 4, "F64": 8, "I64": 8, "F16": 2, "BF16": 2, "U8": 1, "BOOL": 1, "I32": 4}


def with_header(header_bytes, data=b""):
    return struct.pack("<Q", len(header_bytes)) + header_bytes + data


def valid(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape); data bytes count up from 0."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape in tensors:
        count = 1
        for dim in shape:
            count *= dim
        size = count * SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + size]}
        data += bytes((len(data) + i) % 251 for i in range(size))
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    return with_header(text, data)


def main():
    os.makedirs(OUT, exist_ok=True)
    f32_4 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
    seeds = {
        "valid_f32": valid([("w", "F32", [2, 3]), ("b", "F32", [3])]),
        "valid_f64_rank4": valid([("conv.weight", "F64", [2, 1, 2, 2])]),
        "valid_metadata": valid([("x", "F32", [1])], {"epoch": "3", "note": "caf\u00e9 \"q\"\n"}),
        "valid_dtypes": valid([("a", "I64", [2]), ("b", "F16", [3]), ("c", "BF16", [1]), ("d", "U8", [5]),
                               ("e", "BOOL", [2]), ("f", "I32", [1, 1])]),
        "valid_zero_size": valid([("empty", "F32", [0, 4]), ("x", "F32", [2])]),
        "valid_scalar_rank5": valid([("s", "F32", []), ("five", "F32", [1, 1, 1, 1, 2])]),
        "valid_unpadded": valid([("x", "F64", [1])], pad=False),
        "valid_empty": valid([]),
        "valid_out_of_order": with_header(
            b'{ "b": {"data_offsets": [8, 16], "shape": [2], "dtype": "F32"},\n'
            b'  "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},'
            b' "\\u00e9\\ud83d\\udc55": {"dtype": "F32", "shape": [0], "data_offsets": [16, 16]} }   ',
            f32_4),
        "malformed_short": b"\x10\x00\x00",
        "malformed_header_too_large": struct.pack("<Q", 200_000_000) + b"{}",
        "malformed_header_past_end": struct.pack("<Q", 64) + b'{"x":1}',
        "malformed_offsets_out_of_range": with_header(
            b'{"x":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}', f32_4),
        "malformed_overlap": with_header(
            b'{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},'
            b'"b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}}', f32_4),
        "malformed_hole": with_header(
            b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            b'"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', f32_4),
        "malformed_size_mismatch": with_header(b'{"a":{"dtype":"F64","shape":[4],"data_offsets":[0,16]}}', f32_4),
        "malformed_unknown_dtype": with_header(b'{"a":{"dtype":"F33","shape":[4],"data_offsets":[0,16]}}', f32_4),
        "malformed_json_trailing_comma": with_header(
            b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},}', f32_4),
        "malformed_json_bad_escape": with_header(b'{"a\\x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', f32_4),
        "malformed_json_duplicate": with_header(
            b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
            b'"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', f32_4),
        "malformed_metadata_number": with_header(
            b'{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', f32_4),
        "malformed_shape_fraction": with_header(b'{"a":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}}', f32_4),
    }
    for name, content in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as out:
            out.write(content)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
