// ONNX Runtime's inference throughput on an ONNX model, fed the same real Fashion-MNIST images
// as minicnn's BM_Inference (the first training images, normalised as the tutorial). Prints
// images/s; for batch 1 that is 1 / latency. Run by compare_pytorch.py:
//
//   node benchmarks/ort_inference.js MODEL.onnx THREADS BATCH SECONDS [DATA_DIR]
//
// Session options as the issue of record asks: intraOpNumThreads = THREADS, one inter-op thread,
// graph optimisation level "all". Needs onnxruntime-node (installed as CI installs it, README).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const ort = require('onnxruntime-node');

const IMAGES = 2560;  // as minicnn_benchmarks: ten batches of 256

// The first `count` images of train-images-idx3-ubyte(.gz) in DATA_DIR, as (x / 255 - 0.5) / 0.5.
function realImages(dataDir, count) {
  const base = path.join(dataDir, 'train-images-idx3-ubyte');
  let bytes;
  if (fs.existsSync(base + '.gz')) bytes = zlib.gunzipSync(fs.readFileSync(base + '.gz'));
  else if (fs.existsSync(base)) bytes = fs.readFileSync(base);
  else throw new Error(`${base}(.gz): not found; install dataset-fashion-mnist or pass DATA_DIR`);
  if (bytes.readUInt32BE(0) !== 0x803 || bytes.readUInt32BE(8) !== 28 || bytes.readUInt32BE(12) !== 28) {
    throw new Error(`${base}: expected an IDX file of 28x28 unsigned-byte images`);
  }
  const available = bytes.readUInt32BE(4);
  if (available < count) throw new Error(`${base}: ${available} images, expected at least ${count}`);
  const pixels = new Float32Array(count * 784);
  for (let i = 0; i < pixels.length; ++i) pixels[i] = (bytes[16 + i] / 255 - 0.5) / 0.5;
  return pixels;
}

async function main() {
  const [modelPath, threadsArg, batchArg, secondsArg, dataDir] = process.argv.slice(2);
  const threads = Number(threadsArg), batch = Number(batchArg), seconds = Number(secondsArg);
  if (!modelPath || !(threads >= 1) || !(batch >= 1 && batch <= IMAGES) || !(seconds > 0)) {
    throw new Error('usage: node ort_inference.js MODEL.onnx THREADS BATCH(1..2560) SECONDS [DATA_DIR]');
  }
  const images = realImages(dataDir || '/usr/share/datasets/fashion-mnist', IMAGES);
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
  });
  const inputs = [];
  for (let first = 0; first + batch <= IMAGES; first += batch) {
    inputs.push(new ort.Tensor('float32', images.subarray(first * 784, (first + batch) * 784), [batch, 1, 28, 28]));
  }
  const warmup = batch >= 1000 ? 3 : 50;
  for (let i = 0; i < warmup; ++i) await session.run({ input: inputs[i % inputs.length] });
  let done = 0, next = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds) {
    await session.run({ input: inputs[next] });
    next = (next + 1) % inputs.length;
    done += batch;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  console.log(done / elapsed);
}

main().catch((failure) => {
  console.error(`ort_inference: ${failure.stack || failure}`);
  process.exit(1);
});
