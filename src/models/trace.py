"""The dataflow of a network, read from one eager forward pass: which layer reads which layer's output.

Forward hooks on every *unit* (a Cell without child Cells, or an instance of one of the ``units`` types given)
record the tensors each unit reads and returns, so the graph follows the real ``construct`` code and the real
shapes. A unit that returns its input object (``nn.Identity``, dropout in evaluation) is an alias, not a node.
Used by the MAC counter (:func:`cell_macs`) and by the quantizer, which rebuilds any network made of layers it
knows from this graph.
"""
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import mindspore as ms
import numpy as np
from mindspore import nn

from ..errors import ConfigError

INPUT = -1  # producer index of the network input
UNTRACED = -2  # producer index of a tensor made outside any unit (an inline operation in a construct)


@dataclass
class Node:
    """One call of a unit: ``inputs`` are producer node indices (:data:`INPUT` for the network input)."""
    index: int
    path: str
    cell: nn.Cell
    inputs: list
    in_shapes: list
    shape: tuple
    consumers: list = field(default_factory=list)


@dataclass
class Trace:
    """The nodes of one forward pass in execution order; ``output`` is the node that made the network output."""
    nodes: list
    output: int
    input_shape: tuple

    def sole_consumer(self, node):
        """The node that alone reads ``node``'s output, or None (several readers, or the network output)."""
        if len(node.consumers) != 1 or node.index == self.output:
            return None
        return self.nodes[node.consumers[0]]

    def untraced(self):
        """Nodes that read a tensor made outside any unit."""
        return [n for n in self.nodes if UNTRACED in n.inputs]


@contextmanager
def eager(net):
    """``net`` in evaluation mode under PyNative (where hooks run), both restored afterwards."""
    was_training, mode = net.training, ms.get_context("mode")
    net.set_train(False)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        yield net
    finally:
        net.set_train(was_training)
        ms.set_context(mode=mode)


def units_of(net, units=()):
    """``[(path, cell)]`` of the units of ``net``: cells without children, or instances of ``units``."""
    found = []

    def walk(cell, path):
        children = list(cell.name_cells().items())
        if isinstance(cell, tuple(units)) or not children:
            found.append((path, cell))
            return
        for key, child in children:
            walk(child, f"{path}.{key}" if path else key)

    walk(net, "")
    return found


def trace(net, input_shape, units=(), strict=True):
    """The :class:`Trace` of ``net`` on a zero input of ``input_shape``; ``strict`` refuses a network that computes
    outside its layers (the node reading such a tensor is named)."""
    producer, nodes, keep = {}, [], []

    def hook_for(path):
        def hook(cell, inputs, output):
            tensors = [t for t in inputs if isinstance(t, ms.Tensor)]
            keep.extend(tensors + [output])  # alive until the end, so no id() is reused
            if any(output is t for t in tensors):
                producer[id(output)] = producer.get(id(output), UNTRACED)
                return
            sources = [producer.get(id(t), UNTRACED) for t in tensors]
            node = Node(len(nodes), path, cell, sources, [tuple(t.shape) for t in tensors], tuple(output.shape))
            for s in set(sources) - {INPUT, UNTRACED}:
                nodes[s].consumers.append(node.index)
            nodes.append(node)
            producer[id(output)] = node.index
        return hook

    handles = [cell.register_forward_hook(hook_for(path)) for path, cell in units_of(net, units)]
    x = ms.Tensor(np.zeros(input_shape, np.float32))
    producer[id(x)] = INPUT
    try:
        with eager(net):
            out = net(x)
    finally:
        for handle in handles:
            handle.remove()
    result = Trace(nodes, producer.get(id(out), UNTRACED), tuple(input_shape))
    if strict:
        _check_traced(result)
    return result


def _check_traced(result):
    bad = result.untraced()
    if bad:
        node = bad[0]
        raise ConfigError(f"{node.path} ({type(node.cell).__name__}) reads a tensor computed outside any layer (an "
                          "inline operation in a construct); write that operation as a layer (src/models/ops.py)")
    if result.output < 0:
        raise ConfigError("the network's output is not computed by any of its layers")


def cell_macs(net, image_size=224, in_channels=3):
    """``OrderedDict(cell path -> MACs)`` of every Conv2d and Dense for one image of ``image_size`` (follows the
    real output shapes)."""
    macs = OrderedDict()
    for node in trace(net, (1, in_channels, image_size, image_size), strict=False).nodes:
        cell = node.cell
        if isinstance(cell, nn.Conv2d):
            k = int(np.prod(cell.weight.shape[1:]))  # (Cin / groups) * kh * kw
            macs[node.path] = macs.get(node.path, 0) + int(np.prod(node.shape[1:])) * k
        elif isinstance(cell, nn.Dense):
            macs[node.path] = macs.get(node.path, 0) + int(cell.weight.shape[0] * cell.weight.shape[1])
    return macs
