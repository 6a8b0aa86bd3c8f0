// A minimal safetensors reader for F32 tensors (the format: u64 LE header length, JSON, data),
// shared by the onnxruntime checks.
'use strict';
const fs = require('fs');

function readSafetensors(path) {
  const bytes = fs.readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const base = 8 + headerLength;
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info.dtype !== 'F32') throw new Error(`${path}: ${name}: expected F32, found ${info.dtype}`);
    const [begin, end] = info.data_offsets;
    const start = bytes.byteOffset + base + begin;
    // slice() copies, so the Float32Array is 4-byte aligned whatever the offset.
    tensors[name] = { shape: info.shape, data: new Float32Array(bytes.buffer.slice(start, start + end - begin)) };
  }
  return tensors;
}

module.exports = { readSafetensors };
