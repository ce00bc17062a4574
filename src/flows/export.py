"""``export.py``: checkpoint -> MINDIR / ONNX / AIR / MindSpore Lite ``.ms``, verified before it is kept.

Impossible requests are refused before any work (and before MindSpore is imported). The file is written inside a
private temporary directory next to the target (``src.files.atomic_path``), re-loaded in its own runtime and
compared with the Cell on a fixed input (:mod:`src.deploy.export`); only then is it moved into place, followed by
its record sidecar ``<file>.json``. A QAT checkpoint, or ``--quant ptq``, is exported as int8
(:mod:`.export_int8`, verified the same way). Any failure (bad checkpoint, export error, verification above
``verify_tolerance``) leaves no output file behind.
"""
import os

from src.deploy import DeployError
from src.deploy.export import (FORMATS, check_format, eager_outputs, output_path, sample_inputs, skip_reason, verify,
                               write)
from src.files import atomic_path, ensure_dir
from src.quant import QuantError
from src.record import make_record, sidecar_path, write_sidecar

QUANT_MODES = ("none", "ptq")


def check_quant_args(cfg):
    """Refuse impossible quantization options before any work."""
    if cfg.quant not in QUANT_MODES:
        raise QuantError(f"--quant must be one of {', '.join(QUANT_MODES)}, got {cfg.quant!r}")
    if cfg.quant == "ptq" and not cfg.calib_data:
        raise QuantError("--quant ptq needs calibration images: --calib_data DIR (a folder of images, e.g. the "
                         "training set) [--calib_samples N]")
    for folder_key, count_key in (("calib_data", "calib_samples"), ("quant_verify_data", "quant_verify_samples")):
        folder, count = getattr(cfg, folder_key), getattr(cfg, count_key)
        if folder and not os.path.isdir(folder):
            raise QuantError(f"--{folder_key} {folder} is not a directory of images")
        if count < 1:
            raise QuantError(f"--{count_key} must be >= 1, got {count}")
    if not 0.0 <= cfg.quant_min_agreement <= 1.0:
        raise QuantError(f"--quant_min_agreement is a fraction of the verification images in [0, 1], got "
                         f"{cfg.quant_min_agreement}")


def check_request(cfg):
    """Reject impossible requests before any work; returns the upper-cased format."""
    fmt = check_format(cfg)
    check_quant_args(cfg)
    return fmt


def export_main(cfg):
    """Entry point of ``export.py``: write, verify, then move the file and its record sidecar into place."""
    fmt = check_request(cfg)
    final = output_path(cfg, FORMATS[fmt])
    ensure_dir(os.path.dirname(final))
    # lazy: MindSpore and the model code load after the request checks (keeps export.py --help and refusals fast)
    from src.quant.export import is_quantized_export
    from src.runtime import init_context

    from .export_int8 import export_int8
    from .network import build_cell, deploy_for_export, form_of

    init_context(cfg)
    net, source_record = build_cell(cfg, cfg.ckpt_file)
    print(f"loaded {cfg.ckpt_file}" if cfg.ckpt_file else
          "warning: no --ckpt_file given, exporting randomly initialised weights")
    deploy_for_export(net, cfg.no_reparam)
    class_names = (source_record or {}).get("class_names")
    if is_quantized_export(cfg, net, fmt):  # a QAT checkpoint or --quant ptq: an int8 file
        return export_int8(cfg, net, fmt, final, class_names)
    return export_float(cfg, net, fmt, final, form_of(net), class_names)


def export_float(cfg, net, fmt, final, form, class_names):
    """Write float ``net`` as ``fmt``, verify it in its runtime, move it to ``final`` with its record."""
    record = make_record(cfg, form, class_names, batch_size=None if cfg.dynamic_batch else cfg.batch_size)
    inputs = sample_inputs(cfg)
    references = eager_outputs(net, inputs)
    with atomic_path(final) as path:  # verified before it is moved into place; nothing is left on failure
        write(fmt, net, path, inputs[0], cfg.dynamic_batch, record, cfg.optimize_graph)
        if not os.path.isfile(path):
            raise DeployError(f"{fmt} export produced no file")
        reason = skip_reason(fmt)
        if reason:
            print(f"verification skipped: {reason}")
        else:
            verify(path, fmt, inputs, references, cfg.verify_tolerance)
    write_sidecar(final, record)
    print(f"wrote {final} ({os.path.getsize(final) / 1e6:.2f} MB) and its record "
          f"{os.path.basename(sidecar_path(final))}")
    return 0
