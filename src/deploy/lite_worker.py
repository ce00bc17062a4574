"""MindSpore Lite 2.0 worker: runs inside the Python 3.7 side env (scripts/setup_lite_env.sh), driven by
src/deploy/lite.py through a subprocess.

The only mindspore-lite on PyPI is 2.0.0 for Python 3.7, so this file is self-contained: no MindSpore, no project
imports, Python 3.7 syntax. Commands:
  convert --onnx M.onnx --output BASE [--config_file CFG]   write BASE.ms (ONNX -> MINDIR_LITE)
  predict --model M.ms --input X.npy --output Y.npy         run a float32 NCHW batch; the model is resized to its size
  info --model M.ms                                         print the input and output shapes as JSON
  bench --model M.ms --shape 1,3,224,224 [--warmup W --loops L]  print per-run latencies (ms) as JSON
All take --threads N (default 2).
"""
import argparse
import json
import sys
import time

import mindspore_lite as mslite
import numpy as np


def convert(onnx_file, output_base, config_file=""):
    """ONNX -> .ms (Lite 2.0 rejects MINDIR files written by MindSpore 2.x, so ONNX is the bridge)."""
    converter = mslite.Converter()
    converter.save_type = mslite.ModelType.MINDIR_LITE
    converter.input_format = mslite.Format.NCHW  # the default (NHWC) transposes the model input
    converter.convert(fmk_type=mslite.FmkType.ONNX, model_file=onnx_file, output_file=output_base,
                      config_file=config_file)


def load(model_file, threads):
    """Build a CPU Lite model with ``threads`` threads."""
    context = mslite.Context()
    context.target = ["cpu"]
    context.cpu.thread_num = threads
    model = mslite.Model()
    model.build_from_file(model_file, mslite.ModelType.MINDIR_LITE, context)
    return model


def run(model, batch):
    """Logits of one float32 NCHW batch, resizing the model input when the batch shape differs."""
    inputs = model.get_inputs()
    if list(inputs[0].shape) != list(batch.shape):
        model.resize(inputs, [list(batch.shape)])
        inputs = model.get_inputs()
    inputs[0].set_data_from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    return model.predict(inputs)[0].get_data_to_numpy()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["convert", "predict", "info", "bench"])
    parser.add_argument("--onnx")
    parser.add_argument("--model")
    parser.add_argument("--output")
    parser.add_argument("--input")
    parser.add_argument("--config_file", default="")
    parser.add_argument("--shape", default="1,3,224,224")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--loops", type=int, default=100)
    args = parser.parse_args(argv)
    if args.command == "convert":
        convert(args.onnx, args.output, args.config_file)
    elif args.command == "predict":
        np.save(args.output, run(load(args.model, args.threads), np.load(args.input)))
    elif args.command == "info":
        model = load(args.model, 1)
        shape = list(model.get_inputs()[0].shape)
        # Lite 2.0's Python Model has no get_outputs: one run on zeros gives the output shape
        logits = run(model, np.zeros([max(d, 1) for d in shape], np.float32))
        print(json.dumps({"input_shape": shape, "output_shape": list(logits.shape)}))
    else:
        model = load(args.model, args.threads)
        batch = np.random.RandomState(0).standard_normal([int(d) for d in args.shape.split(",")])
        times = []
        for i in range(args.warmup + args.loops):
            start = time.perf_counter()
            run(model, batch)
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1000.0)
        print(json.dumps({"latencies_ms": times}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
