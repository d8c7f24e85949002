#!/usr/bin/env bash
# The training benchmark on a lent GPU machine (the `device` tool), as one prepared script.
# Here first: python bench/device_pack.py   (wheels, the model as fp16, the HH data; see its docstring)
# There, from the repository root, carrying .whl and .gpu:   bash bench/device_bench.sh
# Logs and run.json files land in $OUT (bench/out/device when run elsewhere).
set -uo pipefail
OUT=${OUT:-bench/out/device}
mkdir -p "$OUT"
[ -n "${SKIP_WHEELS:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
export PYTHONPATH=/tmp/site:$PWD/.gpu/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export RM_DEMO_DEVICE_MODEL=/tmp/minilm
HH=.gpu/hh-rlhf-harmless-base-test.jsonl.gz

# The weights travelled as fp16; both sides start from them cast back to fp32.
rm -rf /tmp/minilm && cp -r .gpu/minilm /tmp/minilm && python3 - <<'EOF' || exit 1
from safetensors.torch import load_file, save_file
weights = load_file("/tmp/minilm/model.fp16.safetensors")
save_file({k: v.float() for k, v in weights.items()}, "/tmp/minilm/model.safetensors", metadata={"format": "pt"})
EOF
rm /tmp/minilm/model.fp16.safetensors

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    nproc
    python3 -c "import sys, torch, transformers, trl, datasets, accelerate, pandas, pyarrow
print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'trl',
      trl.__version__, 'datasets', datasets.__version__, 'accelerate', accelerate.__version__,
      'pandas', pandas.__version__, 'pyarrow', pyarrow.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$OUT/env.txt"

stage() {  # stage NAME SECONDS COMMAND...: one benchmark, its log in $OUT/NAME.log, its wall time printed
    local name=$1 limit=$2
    shift 2
    echo "=== $name: $*"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log" | grep -v -E "^\{'(loss|eval_|train_)|it/s\]|s/it\]"
    echo "=== $name: exit ${PIPESTATUS[0]}, $((SECONDS - start)) s wall"
}

# STAGES picks some of them, in order (a stage may repeat), e.g. STAGES="cli_defaults cli_checkpointing".
STAGES=${STAGES:-side_by_side cli_defaults quality_defaults big_batch}
zcat "$HH" >/tmp/hh.jsonl
for name in $STAGES; do
    case $name in
    side_by_side) # Section 2's side by side, the CPU benchmark's settings, three seeds.
        stage side_by_side 180 python3 bench/bench_train.py --data "$HH" --epochs 2 --batch-size 32 \
            --max-length 256 --seed 42 7 1 ;;
    cli_defaults) # What a user waits for: `rm_demo train` with its defaults, the whole process, all 2,312 pairs.
        rm -rf /tmp/run_defaults
        stage cli_defaults 90 python3 -m rm_demo train /tmp/hh.jsonl -o /tmp/run_defaults
        cp /tmp/run_defaults/run.json "$OUT/cli_defaults_run.json" 2>/dev/null ;;
    cli_checkpointing) # The same with TRL's activation checkpointing back on: what it costs alone.
        rm -rf /tmp/run_checkpointing
        stage cli_checkpointing 90 python3 -m rm_demo train /tmp/hh.jsonl -o /tmp/run_checkpointing \
            --activation-checkpointing on
        cp /tmp/run_checkpointing/run.json "$OUT/cli_checkpointing_run.json" 2>/dev/null ;;
    quality_defaults) # The defaults' quality over three of the five seeds run on the CPU.
        stage quality_defaults 100 python3 bench/bench_train.py --data "$HH" --only rm_demo --epochs 3 \
            --batch-size 16 --max-length 128 --seed 42 7 1 ;;
    big_batch) # A batch that suits the GPU better (rm_demo only; 256 tokens, two epochs).
        stage big_batch 60 python3 bench/bench_train.py --data "$HH" --only rm_demo --epochs 2 --batch-size 128 \
            --max-length 256 --seed 42 ;;
    sweep_hh) # Training settings on HH, five seeds, each seed's configurations in turn (SWEEP: the configurations).
        stage sweep_hh "${SWEEP_LIMIT:-540}" python3 bench/bench_defaults.py --data hh --hh-file "$HH" \
            --configs ${SWEEP:-off epochs-4 lr-1e-4 epochs-4-avg-3} --seed 42 7 1 0 2 --out "$OUT/sweep_hh.jsonl" ;;
    *) echo "unknown stage $name" ;;
    esac
done
