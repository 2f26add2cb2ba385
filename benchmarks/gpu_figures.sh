#!/usr/bin/env bash
# The GPU figures of docs/performance.md (issue #10, item 5), measured in one go on a CUDA machine.
#
#     bash benchmarks/gpu_figures.sh OUT_DIR             # from the repo root; about 5 minutes on an H200
#     bash benchmarks/gpu_figures.sh OUT_DIR run seed_cnn    # only these steps
#
# Runs from the source tree (PYTHONPATH=src), so the machine needs only torch, numpy, h5py, scipy,
# scikit-learn, matplotlib, jinja2, sep, platformdirs and captum. Each step has its own time limit
# and writes its own file under OUT_DIR, so a step that fails or overruns loses only itself.
#   machine.txt       the card, driver and torch
#   train_speed.txt   bench_train: training and inference img/s, seed CNN and default model, batch
#                     256-1024, bf16 (and fp32 at 256), the split held on the GPU
#   run.txt           `galaxymorph run --device cuda` on the default synthetic sky: wall time per
#                     line of output and per stage (run.json), cold (the sky is rendered first)
#   scale.txt         bench_scale: Galaxy10-sized (17,736 images) 10-class training, epoch time,
#                     evaluation and explanation; synthesis on every core
#   compile.txt       bench_train with torch.compile (reduce-overhead: also CUDA graphs)
#   seed_cnn.txt      where the seed CNN's training step spends its time: without augmentation,
#                     in NCHW, without cuDNN's algorithm search, and the profiler's costliest kernels
#   predict.txt       `galaxymorph predict --device cuda` (and --tta) on the 1,200-image synthetic
#                     sky with the run step's model, against the same on the CPU: time and agreement
#   tree*.txt, gz2.txt  the vote benchmark (benchmarks/studies/tree.py: three seeds and the 8-class
#                     benchmark side by side on the card) and the shipped gz2 model's rebuild
#                     (scripts/build_gz2_model.py --install); gz2.tar and tree_runs.tar hold the
#                     model and the scored runs. Needs .realdata/{sdss_gz2,gz2_tree} carried.
# The run step runs twice: cold (a fresh machine renders the sky and builds caches) and warm.
set -u
OUT=${1:?usage: bash benchmarks/gpu_figures.sh OUT_DIR [STEP...]}
shift
STEPS=${*:-train_speed run predict scale compile}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
stamp() {  # prefix each line with the seconds since the step began
    python3 -c 'import sys, time
t = time.time()
for line in sys.stdin:
    print(f"{time.time() - t:7.2f}  {line}", end="", flush=True)'
}
step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, output to OUT/NAME.txt and the log
    local name=$1 limit=$2; shift 2
    echo "=== $name: $*" | tee -a "$OUT/$name.txt"
    local start=$(date +%s.%N)
    timeout "$limit" "$@" 2>&1 | stamp | tee -a "$OUT/$name.txt"
    echo "=== $name: exit ${PIPESTATUS[0]}, $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s" | tee -a "$OUT/$name.txt"
}

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c 'import torch, platform, os; print("torch", torch.__version__, "cuda", torch.version.cuda,
  torch.cuda.get_device_name(), "| python", platform.python_version(), "|", os.cpu_count(), "CPUs")'; } \
  > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"


train_speed() {
    step train_speed 150 python3 benchmarks/speed/bench_train.py --device cuda --models seed default \
        --batch-sizes 256 512 1024 --precisions bf16 --seconds 2 --markdown
    step train_speed 60 python3 benchmarks/speed/bench_train.py --device cuda --models seed default \
        --batch-sizes 256 --precisions fp32 --seconds 2 --markdown
}

run() {
    for pass in cold warm; do
        rm -rf /tmp/gm-gpu-run
        step run 150 python3 -m galaxymorph run --device cuda --out /tmp/gm-gpu-run
        python3 -c 'import json, sys; r = json.load(open("/tmp/gm-gpu-run/run.json"))
print(sys.argv[1], "timings (s):", r.get("timings"))' "$pass" >> "$OUT/run.txt" 2>&1
        python3 -c 'import json; e = json.load(open("/tmp/gm-gpu-run/explain/explain.json"))
print("explain timings (s):", e["methods"][e["latest"]]["timings"])' >> "$OUT/run.txt" 2>&1
        tail -n 2 "$OUT/run.txt"
    done
}

scale() {
    step scale 180 python3 benchmarks/speed/bench_scale.py --n 17736 --layouts contiguous --repeat 1 --fancy-sample 50 \
        --synth-n 2000 --epochs 3 --device cuda --dir /tmp/gm-gpu-scale
}

compile() {
    step compile 200 python3 benchmarks/speed/bench_train.py --device cuda --models default seed --batch-sizes 512 \
        --precisions bf16 --compile reduce-overhead --seconds 2 --markdown
}

seed_cnn() {  # the seed CNN as shipped against the same with each ReLU after its pool, side by side
    step seed_cnn 60 python3 benchmarks/speed/bench_train.py --device cuda --models seed seed-pool-first seed \
        seed-pool-first --batch-sizes 512 --precisions bf16 --seconds 2
    step seed_cnn 40 python3 benchmarks/speed/bench_train.py --device cuda --models seed --batch-sizes 512 \
        --precisions bf16 --seconds 2 --profile 25
}

predict() {  # needs the run step's model (/tmp/gm-gpu-run); PREDICT_DEVICE=cpu tries the step anywhere
    local device=${PREDICT_DEVICE:-cuda} run_dir=${PREDICT_RUN:-/tmp/gm-gpu-run} sky
    sky=$(python3 -c 'from galaxymorph.config import Config; from galaxymorph.runs import synthetic_path
print(synthetic_path(Config()))')
    step predict 120 python3 -m galaxymorph predict "$run_dir" "$sky" --device "$device" --out /tmp/gm-pred-dev.csv
    step predict 120 python3 -m galaxymorph predict "$run_dir" "$sky" --device "$device" --tta --out /tmp/gm-pred-dev-tta.csv
    step predict 300 python3 -m galaxymorph predict "$run_dir" "$sky" --device cpu --out /tmp/gm-pred-cpu.csv
    step predict 30 python3 -c 'import csv
rows = [list(csv.DictReader(open(f"/tmp/gm-pred-{k}.csv"))) for k in ("dev", "cpu")]
probs = [k for k in rows[0][0] if k.startswith("prob_")]
diff = max(abs(float(a[k]) - float(b[k])) for a, b in zip(*rows) for k in probs)
same = sum(a["predicted"] == b["predicted"] for a, b in zip(*rows))
print(f"{len(rows[0])} images; predicted class equal on {same}; max |p(device) - p(cpu)| = {diff:.2e}")'
}

TREE_OUT=${TREE_OUT:-/tmp/gm-tree}
tree_prepare() {  # import and merge the real galaxies of the vote benchmark (needs .realdata carried)
    step tree 300 python3 -m benchmarks.studies.tree --out "$TREE_OUT" --shared .realdata --stage prepare
}

tree() {  # the vote benchmark: three seeds, the 8-class benchmark and the shipped gz2 model, side by side
    tree_prepare
    local pids=() s
    for s in 0 1 2; do
        step tree_seed$s 400 python3 -m benchmarks.studies.tree --out "$TREE_OUT" --shared .realdata \
            --stage finetune --seeds $s --device cuda --threads 2 --pretrain-epochs 25 > /dev/null & pids+=($!)
    done
    step tree_multiclass 400 python3 -m benchmarks.studies.tree --out "$TREE_OUT" --shared .realdata \
        --stage multiclass --multiclass --seeds 0 --device cuda --threads 2 --pretrain-epochs 25 > /dev/null & pids+=($!)
    step gz2 400 python3 -m scripts.build_gz2_model --work "$TREE_OUT" --shared .realdata --device cuda \
        --threads 2 --epochs 30 --install > /dev/null & pids+=($!)
    wait "${pids[@]}"
    step tree 120 python3 -m benchmarks.studies.tree --out "$TREE_OUT" --shared .realdata --stage table \
        --multiclass --seeds 0 1 2 --pretrain-epochs 25
    tar -cf "$OUT/gz2.tar" -C src/galaxymorph/pretrained gz2 2>/dev/null
    (cd "$TREE_OUT" && tar -cf "$OUT/tree_runs.tar" bench_tree.md splits \
        $(ls -d runs/*/seed*/eval/metrics.json runs/*/seed*/run.json \
        runs/*/seed*/eval/predictions.csv 2>/dev/null)) 2>/dev/null
}

real() {  # candidates of the real-galaxy benchmark screened on the GPU (needs .realdata/sdss_gz2 carried)
    step real ${REAL_LIMIT:-200} python3 -m benchmarks.studies.real --out /tmp/gm-real --source .realdata/sdss_gz2 \
        --device cuda --candidates ${REAL_CANDIDATES:-narrow-30 narrow-balanced-30 narrow-ema99-30 narrow-ema998-30}
    step real 60 python3 -m benchmarks.studies.real --out /tmp/gm-real --source .realdata/sdss_gz2 --table-only --baseline narrow-30 \
        --candidates ${REAL_CANDIDATES:-narrow-30 narrow-balanced-30 narrow-ema99-30 narrow-ema998-30}
}

for name in $STEPS; do "$name"; done
