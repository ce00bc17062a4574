"""Classify images: ``python infer.py --model_file MODEL(.ckpt|.mindir|.onnx|.ms) --input IMAGE|DIR|LIST.txt``.

A ``.ckpt`` also needs ``--model`` and ``--num_classes``; ``--top_k`` and ``--labels_file`` shape the output.
"""
import sys

from src.config import run_cli
from src.flows.infer import infer_main

if __name__ == "__main__":
    sys.exit(run_cli(infer_main, "infer"))
