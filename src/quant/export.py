"""The int8 files ``export.py`` writes (:mod:`src.flows.export_int8`) for a QAT checkpoint, or a float checkpoint
with ``--quant ptq``:

- ONNX: the QDQ graph with int8 weights (:mod:`.onnx_qdq`), run by onnxruntime with int8 kernels; with
  ``optimize_graph`` (default) its channels are padded to the widths of onnxruntime's fast int8 kernels
  (:func:`src.deploy.onnx_graph.optimize_qdq`, exact).
- MINDIR: the fake-quant network itself (float ops simulating int8; exact in MindSpore).
- MINDIR_LITE: see :mod:`.lite`.

Every file is written in a private temporary directory (:func:`src.files.atomic_path`), run in its own runtime
on the verification batch (``quant_verify_samples`` real images from ``--quant_verify_data``, by default from
``--calib_data``; without either a fixed random batch) and compared
with the fake-quant Cell: top-1 agreement and max logit difference are printed, and an agreement below
``quant_min_agreement`` keeps nothing. Then it is moved into place with a sidecar record (form ``int8``; the
fake-quant MINDIR: ``qat``).
"""
import json

import numpy as np

from src.deploy.export import eager_outputs, write_mindir
from src.deploy.onnx_graph import optimize_qdq
from src.extras import require
from src.record import CKPT_KEY

from . import QuantError
from .calibrate import batched, calibration_images, eager_batches, post_training_quantize
from .lite import use_lite_arithmetic, write_int8_ms
from .onnx_qdq import build_model, onnx
from .qat import QuantScheme, is_qat_network, scheme_of_network

QUANT_FORMATS = ("ONNX", "MINDIR_LITE", "MINDIR")


def is_quantized_export(cfg, net, fmt):
    """True when ``net`` (a QAT network, or a float one under ``--quant ptq``) is exported as int8; refuses PTQ of
    a QAT checkpoint and formats without an int8 writer."""
    qat = is_qat_network(net)
    if cfg.quant == "ptq" and qat:
        raise QuantError(f"{cfg.ckpt_file} is already a quantization-aware (QAT) checkpoint; drop --quant ptq "
                         "(it is exported as int8 as it is)")
    quantized = qat or cfg.quant == "ptq"
    if quantized and fmt not in QUANT_FORMATS:
        raise QuantError(f"int8 export supports {', '.join(QUANT_FORMATS)} (fake-quant graph), not {fmt}")
    unused = [f"--{key}" for key in ("calib_data", "quant_verify_data") if getattr(cfg, key)]
    if unused and not quantized:
        raise QuantError(f"{' and '.join(unused)} only serve int8 exports, and {cfg.ckpt_file or 'this model'} is "
                         "exported in float: add --quant ptq to quantize it, or drop them")
    if quantized and fmt == "MINDIR_LITE":  # check_request requires onnx for ONNX, and for .ms only via ONNX
        require("onnx", "int8 MINDIR_LITE export (its graph is written as ONNX)")
    if quantized and fmt == "ONNX":
        require("onnxruntime", "int8 ONNX export (verified in onnxruntime before it is kept)")
    return quantized


def verification_batch(cfg):
    """``quant_verify_samples`` real images from ``quant_verify_data`` (e.g. a held-out split) or else from
    ``calib_data`` (a different draw than calibration), or a fixed random batch."""
    folder, count = cfg.quant_verify_data or cfg.calib_data, cfg.quant_verify_samples
    if folder:
        images = calibration_images(folder, count, cfg, seed=1)
        return images, f"images of {folder}"
    rng = np.random.default_rng(0)
    return rng.normal(size=(count, 3, cfg.image_size, cfg.image_size)).astype(np.float32), "random inputs"


def cell_logits(net, images):
    """The fake-quant Cell's logits, eagerly (PyNative)."""
    return np.concatenate(eager_outputs(net, eager_batches(images)))


def compare(fmt, outputs, references, what, min_agreement):
    """Print top-1 agreement and max logit difference; raise when the agreement is below ``min_agreement``."""
    agreement = float((outputs.argmax(1) == references.argmax(1)).mean())
    diff = float(np.abs(outputs - references).max())
    print(f"verified int8 {fmt} in its runtime on {len(outputs)} {what}: top-1 agreement with the fake-quant Cell "
          f"{agreement:.2%}, max abs logit diff {diff:.3g} (max |logit| {float(np.abs(references).max()):.3g})")
    if agreement < min_agreement:
        raise QuantError(f"exported {fmt} agrees with the fake-quant Cell on only {agreement:.2%} of the "
                         f"verification batch (< quant_min_agreement {min_agreement:.2%}); no file written")
    return agreement, diff


def lite_references(net, images, references):
    """Switch ``net`` to what a Lite 2.0 ``.ms`` computes (:func:`.lite.use_lite_arithmetic`: weights per tensor,
    Lite's rounding); the ``.ms`` is verified against that Cell, and how often it agrees with the checkpoint's own
    Cell is printed."""
    per_channel = use_lite_arithmetic(net)
    lite_cell = cell_logits(net, images)
    agreement = float((lite_cell.argmax(1) == references.argmax(1)).mean())
    weights = "the weights re-quantized per tensor (Lite 2.0 reads one scale per tensor) and " if per_channel else ""
    advice = "; train with --quant_per_channel false to deploy exactly the trained weights" if per_channel else ""
    print(f"note: the .ms computes the fake-quant Cell with {weights}MindSpore Lite's int8 rounding; that Cell "
          f"agrees in top-1 with the checkpoint's own on {agreement:.2%} of the {len(images)} verification images, "
          f"and the .ms is verified against it{advice}")
    return lite_cell


def write(fmt, net, path, cfg, record):
    """Write the quantized ``net`` as ``fmt`` to ``path`` (ONNX files also carry ``record`` inside); returns the
    record form of the file."""
    if fmt == "ONNX":
        model = build_model(net, cfg.image_size, cfg.batch_size, cfg.dynamic_batch)
        if cfg.optimize_graph:
            optimize_qdq(model)
        onnx.helper.set_model_props(model, {CKPT_KEY: json.dumps(record)})
        onnx.save(model, path)
    elif fmt == "MINDIR":
        write_mindir(net, path, np.zeros((cfg.batch_size, 3, cfg.image_size, cfg.image_size), np.float32),
                     cfg.dynamic_batch)
    else:
        write_int8_ms(net, path, cfg)


def quantize_for_export(cfg, net):
    """Quantize float ``net`` by PTQ on ``--calib_data`` (in place; a QAT network is already quantized) and put it
    in eval mode; returns where its quantization comes from: 'qat' or 'ptq'."""
    source = "qat"
    if not is_qat_network(net):
        scheme = QuantScheme.from_config(cfg)
        calib = calibration_images(cfg.calib_data, cfg.calib_samples, cfg)
        post_training_quantize(net, batched(calib, 32), scheme, cfg.quant_calib_method)
        print(f"PTQ: {scheme.describe()}; activation ranges ({cfg.quant_calib_method}) from {len(calib)} images "
              f"of {cfg.calib_data}")
        source = "ptq"
    net.set_train(False)
    return source


def int8_references(net, fmt, images):
    """The fake-quant Cell's logits the written ``fmt`` file must agree with (for ``.ms``: the Cell in Lite's
    arithmetic)."""
    references = cell_logits(net, images)
    if fmt == "MINDIR_LITE":
        references = lite_references(net, images, references)
    return references


def quant_facts(net, source):
    """The ``quant`` entry of an int8 file's record: where the quantization comes from, and its scheme."""
    scheme = scheme_of_network(net)
    return {"source": source, "per_channel": scheme.per_channel, "keep_float": list(scheme.keep_float)}
