"""Convert PyTorch GhostNet / RepGhostNet / GhostNetV2 weights to a MindSpore checkpoint (no PyTorch needed).

    python scripts/convert_pytorch_weights.py ghostnet_1x.pth --model ghostnet_100 --out ghostnet_100.ckpt
    python scripts/convert_pytorch_weights.py model.safetensors --model repghostnet_100 --out rg.ckpt --deploy
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.convert.cli import main  # noqa: E402  (needs the repo root on sys.path)

if __name__ == "__main__":
    sys.exit(main())
