"""int8 ``.ms`` files for MindSpore Lite 2.0 (the Python 3.7 side env), from the QDQ graph of the QAT network.

Measured with ``mindspore-lite==2.0.0`` (the only one on PyPI): its ONNX parser turns QuantizeLinear /
DequantizeLinear pairs into tensor quantization parameters and the converter then stores int8 weights and picks
int8 kernels; a float ONNX with ``[common_quant_param] quant_type=FULL_QUANT`` and calibration data fails in this
build (the converter loads its calibration model as a MindIR protobuf, "ParseFromArray failed"). The parser reads
one scale per QuantizeLinear and none from a DequantizeLinear, so the ``.ms`` has per-tensor weight scales: a
per-channel QAT network is re-quantized per tensor for it (:func:`to_lite_scheme`; ``--quant_per_channel false``
trains exactly what the ``.ms`` runs). Its classifier multiplies in float (an int8-weight, float-output matmul fails
to load), with the weights and bias on their int8/int32 grids: the same numbers as the Cell's; its average pools
are depthwise convs with weights 1/k² (Lite's int8 average pooling misses the output grid; see
``layers.QuantPool.write_onnx``). Lite's int8 kernels requantize with gemmlowp's double rounding, not onnxruntime's
single one (:func:`.fake_quant.requantize_gemmlowp`): :func:`use_lite_arithmetic` makes the Cell compute that too,
and then the ``.ms`` reproduces it bit for bit at batch 1 (x86 Lite's int8 results change with the batch size).
"""
import dataclasses

import numpy as np
from mindspore import Tensor

from src.deploy import lite
from src.deploy.onnx_graph import onnx

from .fold import QuantConv
from .layers import QuantLayer
from .onnx_qdq import build_model
from .qat import scheme_of_network


def to_lite_scheme(net):
    """Re-quantize the weights of QAT network ``net`` per tensor, in place: the network a Lite 2.0 ``.ms`` can hold.
    Returns False when they already were per tensor."""
    scheme = scheme_of_network(net)
    if not scheme.per_channel:
        return False
    for _, cell in net.cells_and_names():
        if isinstance(cell, QuantConv):
            cell.per_channel = False
    vector = dataclasses.replace(scheme, per_channel=False).vector()
    net.quant_control.scheme.set_data(Tensor(np.asarray(vector, np.float32)))
    return True


def use_lite_arithmetic(net):
    """Make QAT network ``net`` compute what its Lite 2.0 ``.ms`` computes, in place: weights per tensor
    (:func:`to_lite_scheme`) and, in evaluation, Lite's rounding in its convs, products and pools (``lite_rounding``
    of :class:`.layers.QuantLayer`). Returns True when the weights were per channel."""
    requantized = to_lite_scheme(net)
    for _, cell in net.cells_and_names():
        if isinstance(cell, QuantLayer):
            cell.lite_rounding = True
    return requantized


def write_int8_ms(net, path, cfg):
    """Write QAT network ``net`` (per-tensor weights: :func:`to_lite_scheme`) as an int8 ``.ms`` at ``path``
    (through a Lite-flavoured QDQ ONNX written next to it, inside the export's private temporary directory)."""
    model_path = path[:-len(".ms")] + ".qdq.onnx"
    onnx.save(build_model(net, cfg.image_size, cfg.batch_size, cfg.dynamic_batch, flavour="lite"), model_path)
    lite.convert_onnx(model_path, path)
