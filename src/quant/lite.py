"""int8 ``.ms`` files for MindSpore Lite 2.0 (the Python 3.7 side env), from the QDQ graph of the QAT network.

Measured with ``mindspore-lite==2.0.0`` (the only one on PyPI): its ONNX parser turns QuantizeLinear /
DequantizeLinear pairs into tensor quantization parameters and the converter then stores int8 weights and picks
int8 kernels; a float ONNX with ``[common_quant_param] quant_type=FULL_QUANT`` and calibration data fails in this
build (the converter loads its calibration model as a MindIR protobuf, "ParseFromArray failed"). The parser reads
one scale per QuantizeLinear and none from a DequantizeLinear, so the ``.ms`` has per-tensor weight scales: a
per-channel QAT network is re-quantized per tensor there (``--quant_per_channel false`` trains exactly what the
``.ms`` runs), and its float-output classifier stays float (an int8-weight, float-output matmul fails to load).
"""
import onnx

from src.deploy import lite

from .onnx_qdq import build_model
from .qat import scheme_of_network


def write_int8_ms(net, path, cfg):
    """Write QAT network ``net`` as an int8 ``.ms`` at ``path`` (through a Lite-flavoured QDQ ONNX written next to
    it, inside the export's private temporary directory)."""
    if scheme_of_network(net).per_channel:
        print("note: MindSpore Lite 2.0 reads one weight scale per tensor: the per-channel int8 weights are "
              "re-quantized per tensor in the .ms (train with --quant_per_channel false to match it exactly)")
    model_path = path[:-len(".ms")] + ".qdq.onnx"
    onnx.save(build_model(net, cfg.image_size, cfg.batch_size, cfg.dynamic_batch, flavour="lite"), model_path)
    lite.convert_onnx(model_path, path)
