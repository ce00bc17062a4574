"""The aarch64 MindSpore Lite runner (``lite_runner.cc``, built by ``build.sh``) and its host side (``prepare``).

``scripts/run_arm_infer.sh`` ties them together: the host preprocesses images exactly as ``infer.py`` does into a
raw float32 NCHW file, the runner classifies it on aarch64 (natively, or under qemu-aarch64 on x86).
"""
