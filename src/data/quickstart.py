"""The bundled quickstart set: real Fashion-MNIST images (MIT) in the ImageNet folder layout."""
import os
import shutil
import tarfile
import tempfile

from ..errors import ROOT, DataError

QUICKSTART_ARCHIVE = os.path.join(ROOT, "assets", "quickstart", "fashion_mnist_quickstart.tar.gz")
QUICKSTART_NAME = "fashion_mnist_quickstart"  # the archive's single top-level folder


def ensure_quickstart(dest_dir, archive=QUICKSTART_ARCHIVE):
    """Unpack the quickstart archive into ``dest_dir`` unless present; return the dataset root (``data_path``).

    Extraction goes to a temporary folder next to the target and is renamed into place, so an interrupted or
    concurrent run never leaves a half-written dataset behind.
    """
    target = os.path.join(dest_dir, QUICKSTART_NAME)
    if os.path.isdir(target):
        return target
    if not os.path.isfile(archive):
        raise DataError(f"quickstart archive '{archive}' not found; rebuild it with "
                                "scripts/make_quickstart_data.py")
    os.makedirs(dest_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".quickstart-", dir=dest_dir)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        try:
            os.rename(os.path.join(tmp, QUICKSTART_NAME), target)
        except OSError:
            if not os.path.isdir(target):  # otherwise another process finished first: use its copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
