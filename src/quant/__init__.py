"""Quantization: quantization-aware training (QAT) and post-training quantization (PTQ) ending in int8 models.

- :mod:`.fake_quant`: the int8 arithmetic as plain MindSpore ops (runs on CPU, GPU and Ascend), EMA observers.
- :mod:`.fold`: convolution with its BatchNorm folded in, fake-quantized weights.
- :mod:`.qat`: turning a float GhostNet / RepGhostNet (deployed form) / GhostNetV2 into its QAT network.
- :mod:`.calibrate`: calibration passes and post-training quantization.
- :mod:`.onnx_qdq`: writing the QAT network as a QDQ ONNX graph with int8 weights (onnxruntime runs it in int8).
- :mod:`.export`: int8 exports of QAT / PTQ models, verified in their runtime before they are kept.
- :mod:`.report`: per-layer quantization parameters and int8-vs-float error (``python -m src.quant.report``).
"""
from src.errors import ProjectError


class QuantError(ProjectError, ValueError):
    """A quantization request that cannot be honoured (wrong kind of checkpoint, missing calibration data, ...)."""
