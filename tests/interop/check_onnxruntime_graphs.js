// onnxruntime (npm onnxruntime-node, CPU) runs minicnn's ONNX export of a graph model (residual
// blocks, BatchNorm, the activations; written by `interop_driver export-onnx-graphs`) and must
// reproduce minicnn's eval-mode output (run by run_interop.sh onnx_graphs).
//
//   node check_onnxruntime_graphs.js MODEL.onnx INPUT.safetensors OUTPUT.safetensors
//
// INPUT holds "input" [N, ...] and OUTPUT minicnn's "output". Every output value must satisfy
// |ort - minicnn| <= 1e-4 max(1, |minicnn|) (float32 arithmetic in a different order). The
// whole batch runs, then its first sample alone (the symbolic batch dimension). Exits 1 on a
// mismatch.
'use strict';
const ort = require('onnxruntime-node');
const { readSafetensors } = require('./safetensors.js');

const TOLERANCE = 1e-4;

async function main() {
  const [modelPath, inputPath, outputPath] = process.argv.slice(2);
  const input = readSafetensors(inputPath).input;
  const expected = readSafetensors(outputPath).output;
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  if (session.inputNames.join() !== 'input' || session.outputNames.join() !== 'output') {
    throw new Error(`unexpected graph names: inputs ${session.inputNames}, outputs ${session.outputNames}`);
  }

  let worstAbsolute = 0;
  let worstRelative = 0;
  const compare = async (batch) => {
    const sampleSize = input.data.length / input.shape[0];
    const outputSize = expected.data.length / expected.shape[0];
    const feed = new ort.Tensor('float32', input.data.subarray(0, batch * sampleSize), [batch, ...input.shape.slice(1)]);
    const output = (await session.run({ input: feed })).output;
    const expectedDims = [batch, ...expected.shape.slice(1)];
    if (output.dims.join() !== expectedDims.join()) {
      throw new Error(`output dims ${output.dims}, expected [${expectedDims}]`);
    }
    for (let i = 0; i < batch * outputSize; ++i) {
      const difference = Math.abs(output.data[i] - expected.data[i]);
      // NaN fails: a comparison with NaN is false, so !(x <= y) catches it.
      if (!(difference <= worstAbsolute)) worstAbsolute = difference;
      const relative = difference / Math.max(1, Math.abs(expected.data[i]));
      if (!(relative <= worstRelative)) worstRelative = relative;
    }
  };
  await compare(input.shape[0]);
  await compare(1);

  console.log(`onnxruntime-node ${require('onnxruntime-node/package.json').version}: ${modelPath}: ` +
              `largest difference vs minicnn ${worstAbsolute.toExponential(3)} absolute, ` +
              `${worstRelative.toExponential(3)} relative to max(1, |value|) over ${expected.data.length} values ` +
              `(tolerance ${TOLERANCE})`);
  if (!(worstRelative <= TOLERANCE)) process.exit(1);
}

main().catch((failure) => {
  console.error(`check_onnxruntime_graphs: ${failure.stack || failure}`);
  process.exit(1);
});
