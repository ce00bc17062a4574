"""``export.py`` for quantized models: a QAT checkpoint, or a float checkpoint with ``--quant ptq``.

The network is quantized (PTQ) if it is not yet, the file written in a private temporary directory
(:func:`src.files.atomic_path`) by :mod:`src.quant.export`, run in its own runtime on the verification batch and
compared with the fake-quant Cell; an agreement below ``quant_min_agreement`` keeps nothing. Then it is moved into
place with a sidecar record (form ``int8``; the fake-quant MINDIR: ``qat``).
"""
import os

from src.deploy.infer import predict
from src.deploy.runtimes import open_runner
from src.files import atomic_path
from src.quant.export import compare, int8_references, quant_facts, quantize_for_export, verification_batch, write
from src.record import make_record, write_sidecar


def export_int8(cfg, net, fmt, final, class_names):
    """Quantize (PTQ) if needed, write ``fmt``, verify it in its runtime, move it to ``final`` with its record."""
    source = quantize_for_export(cfg, net)
    images, what = verification_batch(cfg)
    references = int8_references(net, fmt, images)
    form = "qat" if fmt == "MINDIR" else "int8"
    record = make_record(cfg, form, class_names, batch_size=None if cfg.dynamic_batch else cfg.batch_size,
                         quant=quant_facts(net, source))
    with atomic_path(final) as path:  # verified before it is moved into place; nothing is left on failure
        write(fmt, net, path, cfg, record)
        compare(fmt, predict(open_runner(path), images), references, what, cfg.quant_min_agreement)
    write_sidecar(final, record)
    print(f"wrote {final} ({os.path.getsize(final) / 1e6:.2f} MB, form {form})")
    return 0
