#!/usr/bin/python3
"""Writes the seed corpus of the IDX fuzz target into tests/fuzz/corpus/fuzz_idx/.

    /usr/bin/python3 tests/fuzz/make_idx_corpus.py

Small valid files of every element type (raw and gzip) and one file per malformed case the
reader must reject. gzip files use mtime 0, so re-running reproduces the corpus byte for byte.
"""
import gzip
import io
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_idx")
CODES = {"u8": (0x08, ">u1"), "i8": (0x09, ">i1"), "i16": (0x0B, ">i2"), "i32": (0x0C, ">i4"),
         "f32": (0x0D, ">f4"), "f64": (0x0E, ">f8")}


def header(code, dims):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


def idx(type_name, dims, values):
    code, dtype = CODES[type_name]
    return header(code, dims) + np.asarray(values).astype(dtype).tobytes()


def gz(data):
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as out:
        out.write(data)
    return buffer.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "valid_u8_1d": idx("u8", [5], [0, 1, 127, 128, 255]),
        "valid_i8_2d": idx("i8", [2, 2], [-128, -1, 0, 127]),
        "valid_i16_2d": idx("i16", [2, 3], [-32768, -2, 0, 1, 258, 32767]),
        "valid_i32_3d": idx("i32", [1, 2, 2], [-2**31, -1, 65536, 2**31 - 1]),
        "valid_f32_4d": idx("f32", [2, 1, 2, 2], [0.0, -0.5, 1.5, 3.25e10, -1e-20, 7.0, 0.1, -3.0]),
        "valid_f64_1d": idx("f64", [3], [3.141592653589793, -2.5e300, 0.0]),
        "valid_u8_empty": idx("u8", [0, 28, 28], []),
        "valid_images_u8_3d": idx("u8", [2, 3, 4], list(range(24))),
        "valid_labels_u8": idx("u8", [4], [9, 0, 0, 3]),
        "malformed_empty": b"",
        "malformed_wrong_magic": b"\x01\x02\x08\x01\x00\x00\x00\x01\x07",
        "malformed_unknown_type": header(0x0A, [1]) + b"\x00",
        "malformed_zero_dims": bytes([0, 0, 0x08, 0]),
        "malformed_five_dims": header(0x08, [1, 1, 1, 1, 1]) + b"\x00",
        "malformed_overflow_dims": header(0x0E, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF]),
        "malformed_dims_exceed_file": header(0x08, [60000, 28, 28]) + b"\x00\x00\x00\x00",
        "malformed_truncated_header": header(0x08, [3, 4])[:9],
        "malformed_truncated_data": idx("i16", [4], [1, 2, 3, 4])[:-3],
        "malformed_trailing_bytes": idx("u8", [2], [1, 2]) + b"\xAA\xBB\xCC",
    }
    valid_gzip = gz(idx("f32", [2, 3], [0.5, 1, 2, 3, 4, 5]))
    seeds.update({
        "valid_u8_gz": gz(seeds["valid_images_u8_3d"]),
        "valid_f32_gz": valid_gzip,
        "valid_i32_gz": gz(seeds["valid_i32_3d"]),
        "valid_two_members_gz": gz(seeds["valid_u8_1d"][:6]) + gz(seeds["valid_u8_1d"][6:]),
        "malformed_gz_truncated": valid_gzip[:-7],
        "malformed_gz_corrupt": valid_gzip[:12] + bytes([valid_gzip[12] ^ 0x55]) + valid_gzip[13:],
        "malformed_gz_bad_crc": valid_gzip[:-8] + bytes([valid_gzip[-8] ^ 1]) + valid_gzip[-7:],
        "malformed_gz_garbage_after": valid_gzip + b"garbage",
        "malformed_gz_empty_content": gz(b""),
        "malformed_gz_dims_exceed": gz(header(0x0E, [1 << 17, 1 << 10, 1 << 10])),
        "malformed_gz_truncated_data": gz(idx("u8", [10], list(range(10)))[:-4]),
        "malformed_gz_trailing_bytes": gz(idx("u8", [2], [1, 2]) + b"\x00"),
    })
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as out:
            out.write(data)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
