"""``python -m src.quant.report``: the per-layer quantization report of a QAT checkpoint (or of a float one,
quantized by PTQ on ``--calib_data`` first) on real images; the tables are :mod:`src.quant.report`'s."""
import json
import os

import mindspore as ms

from src.files import atomic_write
from src.quant import QuantError
from src.quant.calibrate import batched, calibration_images, post_training_quantize
from src.quant.qat import QuantScheme, is_qat_network
from src.quant.report import REPORT_SAMPLES, activation_rows, print_tables, weight_rows
from src.runtime import init_context

from .network import build_cell


def report_main(cfg):
    """Entry point of ``python -m src.quant.report``."""
    if not cfg.calib_data:
        raise QuantError("--calib_data DIR is required: the report runs real images through the network")
    init_context(cfg)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = build_cell(cfg, cfg.ckpt_file)[0]
    if not is_qat_network(net):
        calib = calibration_images(cfg.calib_data, cfg.calib_samples, cfg)
        post_training_quantize(net, batched(calib, 32), QuantScheme.from_config(cfg), cfg.quant_calib_method)
        print(f"{cfg.ckpt_file or 'random weights'}: float checkpoint, quantized by PTQ on {len(calib)} images")
    images = calibration_images(cfg.calib_data, min(REPORT_SAMPLES, cfg.calib_samples), cfg, seed=1)
    acts, weights = activation_rows(net, images), weight_rows(net)
    print_tables(acts, weights, top=25)
    path = os.path.join(cfg.output_dir, "quant_report.json")
    with atomic_write(path, "w") as f:
        json.dump({"checkpoint": cfg.ckpt_file, "activations": acts, "weights": weights}, f, indent=1)
    print(f"\nwrote {path}")
    return 0
