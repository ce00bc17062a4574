"""Export a checkpoint for deployment: ``python export.py --model NAME --ckpt_file CKPT [--file_format MINDIR|ONNX|AIR|MINDIR_LITE]``.

RepGhost networks are re-parameterized first; the written file is re-loaded and checked against the Cell.
"""
import sys

from src.config import run_cli
from src.flows.export import export_main

if __name__ == "__main__":
    sys.exit(run_cli(export_main, "export"))
