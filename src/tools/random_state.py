"""A realistic random inference state for a network, for tests and benchmarks (no trained weights ship here)."""
import mindspore as ms
import numpy as np

# GhostNetV3's re-parameterizable convs sum 3-5 parallel conv+BN branches (``*_rpr_*``): each gets a quarter of the
# gain, so the sum acts as one conv does (a trained V3 learns that; at full gain every module multiplies its
# activations ~4x and the logits of a 0.5x net reach 1e2).
PARALLEL_BRANCHES = 4


def randomize_state(net, seed=0):
    """Give ``net`` a realistic, non-trivial inference state in place and switch it to eval mode.

    BN gamma U(0.4, 1), beta and moving mean N(0, 0.1), moving variance U(1, 3), classifier weights N(0, 0.5):
    every branch contributes, logits are O(1); GhostNetV3's parallel branches share one conv's gain. (A freshly
    initialised net in eval mode is chaotic — its logits reach 1e4 — so comparisons on it say nothing, and its
    activations are not those of a real model.)
    """
    rng = np.random.default_rng(seed)
    for name, param in net.parameters_and_names():
        shape = param.shape
        if name.endswith("moving_variance"):
            value = rng.uniform(1.0, 3.0, shape)
        elif name.endswith(("moving_mean", "beta")):
            value = rng.normal(0.0, 0.1, shape)
        elif name.endswith("gamma"):
            value = rng.uniform(0.4, 1.0, shape) / (PARALLEL_BRANCHES if "_rpr_" in name else 1)
        elif name == "classifier.weight":
            value = rng.normal(0.0, 0.5, shape)
        else:
            continue
        param.set_data(ms.Tensor(value.astype(np.float32)))
    net.set_train(False)
    return net
