"""``infer.py``: top-k predictions of a ``.ckpt``, ``.mindir``, ``.onnx`` or ``.ms`` model on images.

Preprocessing is ``src.data.transforms.eval_preprocess`` (pure OpenCV + NumPy, equal to the MindSpore eval
pipeline) with the settings the model file carries (its record), so every runtime sees the input the model was
trained for. A ``.ms`` model runs in the Lite side env; MindSpore is then never imported.
"""
import os

from src.deploy import DeployError
from src.deploy.infer import format_predictions, list_images, predict, preprocess, softmax
from src.deploy.labels import class_names

from .model import open_model


def infer_main(cfg):
    """Entry point of ``infer.py``."""
    if not cfg.model_file:
        raise DeployError("--model_file is required: a .ckpt, .mindir, .onnx or .ms file")
    if cfg.top_k < 1:
        raise DeployError(f"--top_k must be >= 1 (how many classes to print per image), got {cfg.top_k}")
    paths = list_images(cfg.input)
    if os.path.splitext(cfg.model_file)[1].lower() in (".ckpt", ".mindir"):
        from src.runtime import init_context  # lazy: MindSpore only for .ckpt / .mindir (a .ms runs without it)

        init_context(cfg)
    runner = open_model(cfg, cfg.model_file)
    inputs, paths = preprocess(paths, cfg, cfg.image_size, skip_bad=os.path.isdir(cfg.input))
    probs = softmax(predict(runner, inputs))
    record = runner.record or {}
    names = class_names(cfg.labels_file, probs.shape[1], record.get("class_names"))
    if names is None:
        print(f"note: printing class indices ({probs.shape[1]} classes; pass --labels_file with one name per line)")
    if cfg.top_k > probs.shape[1]:
        print(f"note: --top_k {cfg.top_k} is more than the model's {probs.shape[1]} classes: printing all of them")
    for path, row in zip(paths, probs):
        print("\n".join(format_predictions(path, row, cfg.top_k, names)))
    return 0
