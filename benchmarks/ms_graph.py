"""Operator counts of a MindSpore Lite ``.ms`` model: what Lite's converter made of our (int8) graph.

A ``.ms`` file is a FlatBuffer of MindSpore Lite's ``schema/model.fbs`` (root ``MetaGraph``, file identifier
``MSL2``). Lite 2.0's Python package has no graph API and ships no generated schema code, so this module reads the
few fields it needs by hand (standard library only): for every ``CNode`` its name, the type byte of its
``primitive`` union (which names the op), its ``quantType`` and the data type of its first output tensor, and for
every ``Tensor`` whether it carries ``quantParams``.

FlatBuffer layout used here (little endian): the file starts with the uint32 offset of the root table; a table
starts with an int32 ``soffset``, its vtable lives at ``table - soffset`` and holds uint16 (vtable size, table size,
field offsets...), a field offset of 0 (or past the vtable) meaning "absent, use the default"; offset-typed fields
(tables, vectors, strings) store a uint32 relative to their own position; a vector is a uint32 length then its
elements; a union field ``f`` is stored as two fields, ``f_type`` (ubyte) then ``f`` (the table offset).

``PRIMITIVE_TYPES`` is the ``union PrimitiveType`` of ``mindspore/lite/schema/ops.fbs`` in order (index 0 is
``NONE``). Lite keeps that order stable across versions (ops are appended; a few slots were renamed in place, e.g.
``MatMul`` -> ``MatMulFusion``), so the list below, from a later master, also indexes 2.0 files; a type number past
its end prints as ``PrimitiveType#N``.

    python -m benchmarks.ms_graph outputs/bench/models/ghostnet_100/model.ms outputs/bench/models/ghostnet_100/model.int8.ms
"""
import argparse
import collections
import struct

PRIMITIVE_TYPES = """NONE Abs Activation ActivationGrad Adam AddFusion AdderFusion AddGrad AddN All ApplyMomentum
ArgMaxFusion ArgMinFusion Assert Assign AssignAdd AudioSpectrogram AvgPoolFusion AvgPoolGrad BatchNorm BatchNormGrad
BatchToSpace BatchToSpaceND BiasAdd BinaryCrossEntropy BinaryCrossEntropyGrad BiasAddGrad BroadcastTo Cast Ceil Clip
Concat Attention Conv2DBackpropFilterFusion Conv2DBackpropInputFusion Conv2DFusion Conv2dTransposeFusion Cos
ConstantOfShape Crop CustomExtractFeatures CustomNormalize CustomPredict DeConv2DGradFilter Depend DepthToSpace
DetectionPostProcess DivFusion DivGrad Dropout DropoutGrad Elu Eltwise Equal EmbeddingLookupFusion ExpFusion
ExpandDims FakeQuantWithMinMaxVars FakeQuantWithMinMaxVarsPerChannel FftReal FftImag Flatten FlattenGrad Floor
FloorDiv FloorMod Fill FullConnection FusedBatchNorm Gather GatherNd Greater GreaterEqual HashtableLookup
InstanceNorm LayerNormFusion LeakyRelu Less LessEqual Log LogGrad LogicalAnd LogicalNot LogicalOr LpNormalization
LRN LshProjection LSTM L2NormalizeFusion MatMulFusion Maximum MaximumGrad MaxPoolFusion MaxPoolGrad SwitchLayer Mfcc
Minimum MinimumGrad Mod MulFusion MulGrad Neg NegGrad NotEqual NonMaxSuppression OneHot OnesLike PadFusion
PartialFusion PowerGrad PowFusion PriorBox PReLUFusion QuantDTypeCast Rank Range Reciprocal RealDiv ReduceFusion
Reshape Resize ReverseSequence ReverseV2 Rfft ROIPooling Round Rsqrt ScaleFusion ScatterNd SGD Shape
SigmoidCrossEntropyWithLogits SigmoidCrossEntropyWithLogitsGrad Sin SkipGram SliceFusion SmoothL1Loss
SmoothL1LossGrad Softmax SoftmaxCrossEntropyWithLogits SpaceToBatch SpaceToBatchND SpaceToDepth
SparseSoftmaxCrossEntropyWithLogits SparseToDense Split Sqrt Squeeze Square SquaredDifference Stack StridedSlice
SubFusion SubGrad Switch TensorListFromTensor TensorListGetItem TensorListReserve TensorListSetItem TensorListStack
TileFusion TopKFusion Transpose Unique UnsortedSegmentSum Unsqueeze Unstack LSTMGrad Where ZerosLike Select
ScatterNdUpdate GRU NonZero InvertPermutation Size RandomStandardNormal CropAndResize Erf StridedSliceGrad IsFinite
LinSpace UniformReal AbsGrad RsqrtGrad SqrtGrad LayerNormGrad ResizeGrad Splice LogSoftmax Call Custom CumSum
SplitWithOverlap GenOP RaggedRange GLU TensorArray TensorArrayRead TensorArrayWrite Affine AllGather ReduceScatter
DynamicQuant LSTMGradData LSTMGradWeight RandomNormal NLLLoss NLLLossGrad FormatTranspose GatherD GroupNormFusion
Log1p TensorScatterAdd ScatterElements Triu Tril""".split()

# model.fbs enum QuantType (2.x; nnacl mirrors it as NNACLQuantType): full int8 PTQ nodes are QUANT_ALL
QUANT_TYPES = ["QUANT_NONE", "AwareTraining", "WeightQuant", "PostTraining", "QUANT_WEIGHT", "QUANT_ALL",
               "QUANT_DYNAMIC"]
# mindapi/base/type_id.h TypeId values of the tensor data types a CNN graph uses
DATA_TYPES = {30: "bool", 32: "int8", 34: "int32", 35: "int64", 37: "uint8", 42: "float16", 43: "float32"}
# ops.fbs enum ActivationType (the fused activation of *Fusion ops and Activation itself)
ACTIVATIONS = ["NO_ACTIVATION", "RELU", "SIGMOID", "RELU6", "ELU", "LEAKY_RELU", "ABS", "RELU1", "SOFTSIGN",
               "SOFTPLUS", "TANH", "SELU", "HSWISH", "HSIGMOID", "THRESHOLDRELU", "LINEAR", "HARD_TANH", "SIGN",
               "SWISH", "GELU", "UNKNOWN"]
# field index of activation_type in the op tables that have one (ops.fbs)
ACTIVATION_FIELD = {"Activation": 0, "AddFusion": 0, "MulFusion": 0, "SubFusion": 0, "DivFusion": 0,
                    "Conv2DFusion": 10, "FullConnection": 3, "MatMulFusion": 2, "AvgPoolFusion": 7,
                    "MaxPoolFusion": 7, "ScaleFusion": 1}

# field indices (declaration order) of the model.fbs tables read here
META_NODES, META_TENSORS = 6, 7
NODE_NAME, NODE_PRIMITIVE, NODE_OUTPUTS, NODE_QUANT_TYPE = 0, 2, 4, 5
PRIMITIVE_VALUE_TYPE, PRIMITIVE_VALUE = 0, 1
TENSOR_DATA_TYPE, TENSOR_QUANT_PARAMS = 1, 7


class FlatBuffer:
    """Just enough of a FlatBuffer reader: tables, scalars, strings, vectors of tables / uint32."""

    def __init__(self, data):
        self.data = data

    def u8(self, pos):
        return self.data[pos]

    def u16(self, pos):
        return struct.unpack_from("<H", self.data, pos)[0]

    def i32(self, pos):
        return struct.unpack_from("<i", self.data, pos)[0]

    def u32(self, pos):
        return struct.unpack_from("<I", self.data, pos)[0]

    def root(self):
        return self.u32(0)

    def field(self, table, index):
        """Position of field ``index`` of ``table``, or None when absent."""
        vtable = table - self.i32(table)
        entry = 4 + 2 * index
        if entry >= self.u16(vtable):
            return None
        offset = self.u16(vtable + entry)
        return table + offset if offset else None

    def scalar(self, table, index, reader, default=0):
        pos = self.field(table, index)
        return default if pos is None else reader(pos)

    def deref(self, table, index):
        """Target of an offset-typed field (table, vector or string), or None when absent."""
        pos = self.field(table, index)
        return None if pos is None else pos + self.u32(pos)

    def string(self, table, index):
        pos = self.deref(table, index)
        return "" if pos is None else self.data[pos + 4:pos + 4 + self.u32(pos)].decode("utf-8", "replace")

    def vector_len(self, table, index):
        pos = self.deref(table, index)
        return 0 if pos is None else self.u32(pos)

    def tables(self, table, index):
        """The tables of a ``[Table]`` vector field."""
        pos = self.deref(table, index)
        if pos is None:
            return []
        return [pos + 4 + 4 * i + self.u32(pos + 4 + 4 * i) for i in range(self.u32(pos))]

    def uints(self, table, index):
        pos = self.deref(table, index)
        return [] if pos is None else list(struct.unpack_from(f"<{self.u32(pos)}I", self.data, pos + 4))


def op_name(type_id):
    return PRIMITIVE_TYPES[type_id] if type_id < len(PRIMITIVE_TYPES) else f"PrimitiveType#{type_id}"


def quant_type_name(value):
    return QUANT_TYPES[value] if 0 <= value < len(QUANT_TYPES) else f"QuantType#{value}"


def read_graph(path):
    """Nodes of ``path`` as dicts (name, op, quant_type, out_dtype, activation) and its tensors' quant info."""
    with open(path, "rb") as f:
        fb = FlatBuffer(f.read())
    if fb.data[4:8] != b"MSL2":
        raise ValueError(f"{path}: file identifier {fb.data[4:8]!r}, expected b'MSL2' (MindSpore Lite 2.x .ms)")
    graph = fb.root()
    tensors = []
    for t in fb.tables(graph, META_TENSORS):
        tensors.append({"dtype": DATA_TYPES.get(fb.scalar(t, TENSOR_DATA_TYPE, fb.i32), "?"),
                        "quant_params": fb.vector_len(t, TENSOR_QUANT_PARAMS)})
    nodes = []
    for n in fb.tables(graph, META_NODES):
        prim = fb.deref(n, NODE_PRIMITIVE)
        op = op_name(fb.scalar(prim, PRIMITIVE_VALUE_TYPE, fb.u8)) if prim is not None else "NONE"
        activation = None
        if op in ACTIVATION_FIELD:
            value = fb.deref(prim, PRIMITIVE_VALUE)
            act = fb.scalar(value, ACTIVATION_FIELD[op], fb.u8)
            activation = ACTIVATIONS[act] if act < len(ACTIVATIONS) else str(act)
        outputs = fb.uints(n, NODE_OUTPUTS)
        nodes.append({"name": fb.string(n, NODE_NAME), "op": op,
                      "quant_type": quant_type_name(fb.scalar(n, NODE_QUANT_TYPE, fb.i32)),
                      "out_dtype": tensors[outputs[0]]["dtype"] if outputs else "?", "activation": activation})
    return nodes, tensors


def op_counts(path):
    """``Counter`` of the op type names of the nodes of ``path``."""
    return collections.Counter(n["op"] for n in read_graph(path)[0])


def quant_counts(path):
    """``(nodes, quantized nodes, tensors, tensors with quantParams)`` of ``path``; a node is quantized when its
    ``quantType`` is not ``QUANT_NONE`` (Lite 2.0's full int8 PTQ marks them ``QUANT_ALL``)."""
    nodes, tensors = read_graph(path)
    return (len(nodes), sum(n["quant_type"] != "QUANT_NONE" for n in nodes),
            len(tensors), sum(t["quant_params"] > 0 for t in tensors))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE.ms")
    parser.add_argument("--nodes", action="store_true", help="also list every node")
    args = parser.parse_args(argv)
    for path in args.files:
        nodes, tensors = read_graph(path)
        counts = collections.Counter(n["op"] for n in nodes)
        quantized = sum(n["quant_type"] != "QUANT_NONE" for n in nodes)
        print(f"{path}: {len(nodes)} nodes, {quantized} with a quantized quantType, "
              f"{len(tensors)} tensors ({sum(t['quant_params'] > 0 for t in tensors)} with quantParams)")
        for op, n in counts.most_common():  # per op: quantType / output dtype / fused activation
            detail = collections.Counter(f"{x['quant_type']}/{x['out_dtype']}" + (f"/{x['activation']}"
                                         if x["activation"] else "") for x in nodes if x["op"] == op)
            print(f"  {n:4d}  {op:<18s} " + ", ".join(f"{k}: {v}" for k, v in sorted(detail.items())))
        if args.nodes:
            for x in nodes:
                print(f"    {x['op']:<18s} {x['quant_type']:<13s} {x['out_dtype']:<8s} {x['activation'] or '':<14s} "
                      f"{x['name']}")


if __name__ == "__main__":
    main()
