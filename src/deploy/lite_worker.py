"""MindSpore Lite 2.0 worker: runs inside the Python 3.7 side env (scripts/setup_lite_env.sh), driven by
src/deploy/lite.py through a subprocess.

The only mindspore-lite on PyPI is 2.0.0 for Python 3.7, so this file is self-contained: no MindSpore, no project
imports, Python 3.7 syntax. Commands:
  convert --onnx M.onnx --output BASE [--config_file CFG]   write BASE.ms (ONNX -> MINDIR_LITE)
  predict --model M.ms --input X.npy --output Y.npy [--chunk N]  run a float32 NCHW batch (in runs of N images);
                                                             the model is resized to the run's size
  info --model M.ms                                         print the input and output shapes as JSON
  bench --model M.ms --shape 1,3,224,224 [--warmup W --loops L]  print per-run latencies (ms) as JSON
  serve                                                     timing server for interleaved benchmarks: reads one
                                                            JSON request per stdin line, answers one JSON line
All take --threads N (default 2) and --affinity MODE (Lite's thread_affinity_mode: 0 none, 1 big cores first,
2 little cores first; default 0).
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


def load(model_file, threads, affinity=0):
    """Build a CPU Lite model with ``threads`` threads and thread affinity mode ``affinity``."""
    context = mslite.Context()
    context.target = ["cpu"]
    context.cpu.thread_num = threads
    context.cpu.thread_affinity_mode = affinity
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
    return model.predict(inputs)[0].get_data_to_numpy().copy()  # a view of Lite's buffer, reused by the next run


def info(model):
    """Input and output shapes (-1 for a dynamic dimension). Lite 2.0's Python ``Model`` has no ``get_outputs``,
    so the output shape comes from one run on zeros (a dynamic batch stays -1)."""
    input_shape = list(model.get_inputs()[0].shape)
    output_shape = list(run(model, np.zeros([max(d, 1) for d in input_shape], np.float32)).shape)
    if input_shape[0] < 0:
        output_shape[0] = -1
    return {"input_shape": input_shape, "output_shape": output_shape}


def time_runs(model, batch, runs):
    """``(wall ms, process CPU ms)`` of each of ``runs`` consecutive predictions."""
    times = []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        run(model, batch)
        times.append(((time.perf_counter() - start) * 1000.0, (time.process_time() - cpu) * 1000.0))
    return times


def serve(stdin, stdout):
    """Answer timing requests until EOF, so a benchmark can interleave Lite runs with other runtimes' runs:
    ``{"op": "load", "key": K, "model": M, "shape": [...], "threads": T, "affinity": A}`` -> ``{"ok": true}``;
    ``{"op": "time", "key": K, "runs": N}`` -> ``{"ms": [[wall, cpu], ...]}``; ``{"op": "version"}`` -> ``{"version": V}``.
    Errors answer ``{"error": "..."}``."""
    models = {}
    for line in stdin:
        request = json.loads(line)
        try:
            if request["op"] == "load":
                batch = np.random.RandomState(0).standard_normal(request["shape"]).astype(np.float32)
                models[request["key"]] = (load(request["model"], request["threads"], request.get("affinity", 0)),
                                          batch)
                run(*models[request["key"]])
                answer = {"ok": True}
            elif request["op"] == "version":
                answer = {"version": mslite.__version__}
            else:
                answer = {"ms": time_runs(*models[request["key"]], request["runs"])}
        except Exception as exc:  # reported to the driving process, which raises it there
            answer = {"error": "{}: {}".format(type(exc).__name__, exc)}
        stdout.write(json.dumps(answer) + "\n")
        stdout.flush()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["convert", "predict", "info", "bench", "serve"])
    parser.add_argument("--onnx")
    parser.add_argument("--model")
    parser.add_argument("--output")
    parser.add_argument("--input")
    parser.add_argument("--config_file", default="")
    parser.add_argument("--shape", default="1,3,224,224")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--loops", type=int, default=100)
    parser.add_argument("--affinity", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "convert":
        convert(args.onnx, args.output, args.config_file)
    elif args.command == "predict":
        model, batch = load(args.model, args.threads, args.affinity), np.load(args.input)
        chunk = args.chunk or len(batch)
        np.save(args.output, np.concatenate([run(model, batch[i:i + chunk]) for i in range(0, len(batch), chunk)]))
    elif args.command == "info":
        print(json.dumps(info(load(args.model, 1))))
    elif args.command == "serve":
        serve(sys.stdin, sys.stdout)
    else:
        model = load(args.model, args.threads, args.affinity)
        batch = np.random.RandomState(0).standard_normal([int(d) for d in args.shape.split(",")])
        time_runs(model, batch, args.warmup)
        print(json.dumps({"latencies_ms": [wall for wall, _ in time_runs(model, batch, args.loops)]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
