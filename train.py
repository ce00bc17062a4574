"""Train a GhostNet / RepGhostNet / GhostNetV2: ``python train.py [--config FILE] [--key value ...]``."""
import sys

from src.config import run_cli
from src.flows.train import train

if __name__ == "__main__":
    sys.exit(run_cli(train, "train"))
