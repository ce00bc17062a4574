"""Writing a QAT network as a QDQ ONNX model with int8 weights, which onnxruntime runs with int8 kernels.

MindSpore 2.10's ONNX exporter writes opset 11 and no QuantizeLinear/DequantizeLinear, and per-channel
DequantizeLinear needs opset 13, so the graph is written here with the ``onnx`` helper API (:mod:`.int8_graph`).
Nothing here knows a network: the QAT network is traced once (:mod:`src.models.trace`) and every layer writes its
own nodes (``write_onnx`` of :mod:`.layers` and :mod:`.fold`, data movement from :data:`.layers.MOVES`), with the
quantization parameters the Cell uses and the shapes of the traced pass. The graph is lean on purpose:

- every conv reads a DequantizeLinear of an int8-grid tensor, has int8 weights (per-channel DequantizeLinear),
  an int32 bias at scale ``s_in * s_w`` and is followed by QuantizeLinear, so onnxruntime fuses it to
  ``QLinearConv``; a ReLU before a zero-point-0 QuantizeLinear and the hard-sigmoid clip before the [0, 1] gate
  grid are fused away by onnxruntime as well (the grid saturates exactly there);
- data movement stays on uint8 tensors (the Ghost concat and channel slice, flatten, GhostNetV2's upsampling),
  with no requantization: the concat's inputs share one grid;
- adds, products, pools and the sigmoid read DequantizeLinear and end in QuantizeLinear (``QLinearAdd``,
  ``QLinearMul``, ``QLinearGlobalAveragePool``, ``QLinearAveragePool``, ``QLinearSigmoid``); the classifier is a
  Gemm with int8 weights and float logits (``QGemm``).
"""
from mindspore import nn

from ..models.trace import INPUT, trace
from . import QuantError
from .int8_graph import Graph, Value, helper, onnx
from .layers import QuantLayer, is_move, write_move
from .plan import FLOAT_UNITS

UNITS = FLOAT_UNITS + (QuantLayer,)


def _write(g, node, inputs):
    hint = node.path.replace(".", "_")
    if isinstance(node.cell, QuantLayer):
        return node.cell.write_onnx(g, inputs, node, hint)
    if is_move(node.cell):
        return write_move(g, node.cell, inputs, node, hint)
    raise QuantError(f"{node.path} ({type(node.cell).__name__}) has no int8 ONNX form")


def build_model(net, image_size, batch_size=1, dynamic_batch=False, flavour="onnxruntime"):
    """The QDQ ONNX ``ModelProto`` of QAT network ``net`` for ``image_size`` inputs; ``flavour`` ``lite`` writes
    the weights the way MindSpore Lite 2.0's converter reads them (see :meth:`.int8_graph.Graph.weight`)."""
    conv = next(cell for _, cell in net.cells_and_names() if isinstance(cell, nn.Conv2d))
    tr = trace(net, (1, conv.in_channels, image_size, image_size), units=UNITS)
    g = Graph(flavour)
    values = {INPUT: Value("input")}
    for node in tr.nodes:
        values[node.index] = _write(g, node, [values[i] for i in node.inputs])
    g.nodes.append(helper.make_node("Identity", [g.float(values[tr.output])], ["logits"], name="logits"))
    batch = "batch" if dynamic_batch else batch_size
    outputs = [batch] + list(tr.nodes[tr.output].shape[1:])
    return g.model("int8", [batch, conv.in_channels, image_size, image_size], outputs)


__all__ = ["build_model", "onnx"]
