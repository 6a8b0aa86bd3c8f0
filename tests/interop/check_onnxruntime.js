// onnxruntime (npm onnxruntime-node, CPU) runs minicnn's ONNX export on the prepared real test
// images; its logits must match minicnn's within 1e-4 (run by run_interop.sh).
//
//   node check_onnxruntime.js MODEL.onnx DATA.safetensors MINICNN_LOGITS.safetensors
//
// The images run in batches of 250 and one batch of 1, which exercises the symbolic batch
// dimension. Exits 1 on a mismatch.
'use strict';
const ort = require('onnxruntime-node');
const { readSafetensors } = require('./safetensors.js');

const TOLERANCE = 1e-4;

async function main() {
  const [modelPath, dataPath, logitsPath] = process.argv.slice(2);
  const images = readSafetensors(dataPath).test_images;
  const expected = readSafetensors(logitsPath).logits;
  const [count, channels, height, width] = images.shape;
  const imageSize = channels * height * width;
  const classes = expected.shape[1];
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  if (session.inputNames.join() !== 'input' || session.outputNames.join() !== 'logits') {
    throw new Error(`unexpected graph names: inputs ${session.inputNames}, outputs ${session.outputNames}`);
  }

  let worst = 0;
  const compare = (first, batch, output) => {
    if (output.dims.join() !== [batch, classes].join()) {
      throw new Error(`output dims ${output.dims} for a batch of ${batch}, expected [${batch}, ${classes}]`);
    }
    for (let i = 0; i < batch * classes; ++i) {
      worst = Math.max(worst, Math.abs(output.data[i] - expected.data[first * classes + i]));
    }
  };
  const run = async (first, batch) => {
    const input = new ort.Tensor('float32', images.data.subarray(first * imageSize, (first + batch) * imageSize),
                                 [batch, channels, height, width]);
    const result = await session.run({ input });
    compare(first, batch, result.logits);
  };
  for (let first = 0; first < count; first += 250) await run(first, Math.min(250, count - first));
  await run(7, 1);

  console.log(`onnxruntime-node ${require('onnxruntime-node/package.json').version}: ` +
              `largest logit difference vs minicnn: ${worst.toExponential(3)} over ${count * classes} logits ` +
              `(tolerance ${TOLERANCE})`);
  if (!(worst <= TOLERANCE)) process.exit(1);
}

main().catch((failure) => {
  console.error(`check_onnxruntime: ${failure.stack || failure}`);
  process.exit(1);
});
