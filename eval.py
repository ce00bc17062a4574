"""Evaluate a checkpoint or MINDIR: ``python eval.py --ckpt_file FILE --data_path DIR [--key value ...]``."""
import sys

from src.config import run_cli
from src.flows.eval import evaluate_main

if __name__ == "__main__":
    sys.exit(run_cli(evaluate_main, "eval"))
