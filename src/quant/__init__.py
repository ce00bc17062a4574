"""Quantization: quantization-aware training (QAT) and post-training quantization (PTQ) ending in int8 models.

- :mod:`.fake_quant`: the int8 arithmetic as plain MindSpore ops (runs on CPU, GPU and Ascend), EMA observers.
- :mod:`.layers`: the quantized form of each layer type (add, product, pools, lone BN/activation, concat) and of
  data movement, each writing its own int8 ONNX nodes next to its ``construct``.
- :mod:`.fold`: convolution / dense with its BatchNorm folded in, fake-quantized weights, its int8 ONNX nodes.
- :mod:`.plan`: which quantized layer each layer of a traced float network becomes (fusion, shared grids).
- :mod:`.qat`: turning any float network built from known layers into its QAT network (no family code).
- :mod:`.calibrate`: calibration passes and post-training quantization.
- :mod:`.int8_graph`, :mod:`.onnx_qdq`: the QDQ ONNX graph with int8 weights (onnxruntime runs it in int8),
  written by walking the traced QAT network.
- :mod:`.export`: int8 exports of QAT / PTQ models, verified in their runtime before they are kept.
- :mod:`.report`: per-layer quantization parameters and int8-vs-float error (``python -m src.quant.report``).
"""
from src.errors import ProjectError


class QuantError(ProjectError, ValueError):
    """A quantization request that cannot be honoured (wrong kind of checkpoint, missing calibration data, ...)."""
