#!/usr/bin/env bash
# The training runs behind docs/quantization.md: float baselines and their QAT fine-tunes, one at a time.
#   QS=DIR (bundled quickstart set, src.data.ensure_quickstart) FULL=DIR (python scripts/make_quickstart_data.py --full)
#   OUT=DIR bash benchmarks/quant_runs.sh [qs_g050 qs_rg050 full_g050 full_rg050 qs_v2]
# Each step trains the float model (skipped when OUT/<run>_float/best.ckpt exists) and then fine-tunes it with QAT.
# benchmarks/quant_results.py then evaluates float / PTQ / QAT as Cells, int8 ONNX and int8 .ms.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${QS:?set QS to the quickstart data dir}" "${OUT:?set OUT to the runs dir}"
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(qs_g050 qs_rg050 full_g050 full_rg050)

float_run() {  # name data recipe extra...
    local name=$1 data=$2 recipe=$3; shift 3
    [ -f "$OUT/${name}_float/best.ckpt" ] && return 0
    python train.py --config "$recipe" --data_path "$data" --output_dir "$OUT/${name}_float" "$@"
}

qat_run() {  # name data extra...
    local name=$1 data=$2; shift 2
    [ -f "$OUT/${name}_qat/best.ckpt" ] && return 0
    python train.py --config configs/quickstart_qat.yaml --data_path "$data" --output_dir "$OUT/${name}_qat" \
        --pretrained "$OUT/${name}_float/best.ckpt" "$@"
}

for step in "${STEPS[@]}"; do
    echo "=== $step $(date +%H:%M:%S)"
    case $step in
        qs_g050) float_run qs_g050 "$QS" configs/quickstart.yaml
                 qat_run qs_g050 "$QS" ;;
        qs_rg050) float_run qs_rg050 "$QS" configs/quickstart.yaml --model repghostnet_050
                  qat_run qs_rg050 "$QS" --model repghostnet_050 ;;
        qs_v2) float_run qs_v2 "$QS" configs/quickstart.yaml --model ghostnetv2_100 --image_size 64
               qat_run qs_v2 "$QS" --model ghostnetv2_100 --image_size 64 ;;
        full_g050|full_rg050)
            : "${FULL:?set FULL to the full Fashion-MNIST dir}"
            model=$([ "$step" = full_g050 ] && echo ghostnet_050 || echo repghostnet_050)
            # float: 3 epochs (≈ 8 min each here); QAT: one pass over the 60k images as 3 "epochs" of 160 steps
            # (a different shuffled draw each), BN and observers frozen for the last one
            float_run "$step" "$FULL" configs/fashion_mnist_ghostnet_100.yaml --model "$model" --epochs 3
            qat_run "$step" "$FULL" --model "$model" --epochs 3 --max_steps_per_epoch 160 --batch_size 128 \
                --qat_freeze_bn_epochs 2 --qat_freeze_observer_epochs 2 --log_interval 40 --dropout 0.2 ;;
        *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
echo "=== done $(date +%H:%M:%S)"
