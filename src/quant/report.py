"""Per-layer quantization report: ``python -m src.quant.report --ckpt_file CKPT --calib_data DIR [--key value]``.

For a QAT checkpoint (or a float one, quantized by PTQ on ``--calib_data`` first) and a batch of real images from
``--calib_data``, it prints

- every activation quantizer: scale, zero point, range, the error it adds itself (``||q(x) - x|| / ||x||`` in
  the int8 network) and the error of its output against the float network (everything before it included);
- every conv / dense layer: int8 or float, per-channel scale range and the weight error ``||q(w) - w|| / ||w||``,

worst first, and writes them to ``output_dir/quant_report.json``. Options as ``export.py`` (same config section).
The tables are made here; the command's flow is :func:`src.flows.quant_report.report_main`.
"""
import contextlib
import sys

import mindspore as ms
import numpy as np

from .fake_quant import ActQuant, GateQuant
from .fold import QuantConv
from .qat import quantizers

REPORT_SAMPLES = 64


def _rel(a, b):
    """``||a - b|| / ||b||``."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


@contextlib.contextmanager
def float_reference(net):
    """Inside: ``net`` computes in float (activations unquantized, weights unquantized, BN still folded)."""
    cells = [c for _, c in net.cells_and_names()]
    acts = [c for c in cells if isinstance(c, (ActQuant, GateQuant))]
    layers = [c for c in cells if isinstance(c, QuantConv) and c.quantize]
    for c in acts:
        c.bypass = True
    for c in layers:
        c.quantize = False
    try:
        yield net
    finally:
        for c in acts:
            c.bypass = False
        for c in layers:
            c.quantize = True


def _capture(net, images):
    """``{quantizer path: (input, output)}`` of one eager forward pass over ``images``."""
    seen, handles = {}, []

    def hook(name):
        def record(cell, inputs, output):  # returns None: a forward hook's return value replaces the output
            seen.setdefault(name, (inputs[0].asnumpy(), output.asnumpy()))
        return record

    for name, q in quantizers(net):
        handles.append(q.register_forward_hook(hook(name)))
    try:
        net(ms.Tensor(images))
    finally:
        for h in handles:
            h.remove()
    return seen


def activation_rows(net, images):
    """One row per activation quantizer (see the module docstring)."""
    quantized = _capture(net, images)
    with float_reference(net):
        reference = _capture(net, images)
    rows = []
    for name, q in quantizers(net):
        if name not in quantized:
            continue
        x, xq = quantized[name]
        scale, zero_point = (float(t.asnumpy()) for t in q.qparams())
        rows.append({"layer": name, "scale": scale, "zero_point": int(zero_point),
                     "range": [float(q.fq_min.asnumpy()), float(q.fq_max.asnumpy())],
                     "clipped": float(np.mean(np.abs(xq - x) > scale / 2 + 1e-6)),
                     "quant_error": _rel(xq, x), "error_vs_float": _rel(xq, reference[name][0])})
    return sorted(rows, key=lambda r: -r["quant_error"])


def weight_rows(net):
    """One row per conv / dense layer: precision, scale range and weight error."""
    rows = []
    for name, cell in net.cells_and_names():
        if not isinstance(cell, QuantConv):
            continue
        weight = cell.folded()[0].asnumpy()
        values, scale = (t.asnumpy() for t in cell.int8_weight())
        scale = np.atleast_1d(scale)
        dequant = values * scale.reshape((-1,) + (1,) * (values.ndim - 1)) if len(scale) > 1 else values * scale
        rows.append({"layer": name, "precision": "int8" if cell.quantize else "float",
                     "scale_min": float(scale.min()), "scale_max": float(scale.max()),
                     "weight_error": _rel(dequant, weight) if cell.quantize else 0.0})
    return sorted(rows, key=lambda r: -r["weight_error"])


def print_tables(acts, weights, top):
    print(f"activations ({len(acts)} quantizers), worst first by the error each adds:")
    print(f"{'layer':<44} {'scale':>9} {'zp':>4} {'range':>19} {'clip%':>6} {'q err':>7} {'vs float':>8}")
    for r in acts[:top]:
        print(f"{r['layer']:<44} {r['scale']:9.3g} {r['zero_point']:4d} [{r['range'][0]:8.3g},{r['range'][1]:8.3g}] "
              f"{100 * r['clipped']:6.2f} {r['quant_error']:7.4f} {r['error_vs_float']:8.4f}")
    print(f"\nweights ({len(weights)} layers), worst first:")
    print(f"{'layer':<44} {'prec':>5} {'scale min':>10} {'scale max':>10} {'w err':>8}")
    for r in weights[:top]:
        print(f"{r['layer']:<44} {r['precision']:>5} {r['scale_min']:10.3g} {r['scale_max']:10.3g} "
              f"{r['weight_error']:8.5f}")


if __name__ == "__main__":  # python -m src.quant.report: this module's entry point runs the report flow
    from src.config import run_cli
    from src.flows.quant_report import report_main

    sys.exit(run_cli(report_main, "export"))
