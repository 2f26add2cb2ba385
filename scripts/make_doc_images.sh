#!/usr/bin/env bash
# Rebuild every picture in docs/images, each by the command that made it.
#
#     bash scripts/make_doc_images.sh OUT_DIR [STEP...]     # from the repository root
#
# OUT_DIR (outside the repository) keeps the data, runs and benchmark folders the steps make;
# finished runs there are reused, so an interrupted call can be repeated. Each step writes only
# its own files in docs/images. Steps (default: all), their pictures and their cost on a
# 2-core CPU machine:
#
#   synthetic   synthetic_calibration.png, synthetic_size_2v5.png, synthetic_grid.png
#               scripts/calibrate_synthetic.py; needs ../shared/data/galaxy10_reference.h5
#               (or REFERENCE=PATH); about a minute
#   report      report.png: `galaxymorph run` on the default synthetic sky, then
#               `galaxymorph report RUN --screenshot`; needs Chromium; a few minutes
#   explain     explain_gallery_real.jpg, explain_localisation_real.png: the default recipe on
#               the real SDSS benchmark, seed 0 (benchmarks/studies/real.py), then `galaxymorph
#               explain` on that run; about 5 minutes
#   curve       real_learning_curve.png: benchmarks.studies.curve (the default recipe on
#               25/50/75/100% of the training images, 3 seeds); about 30 minutes
#   pretrain    pretrain_real.png: benchmarks.studies.pretrain, seeds 0 and 1; about an hour
#   committee   real_shared_errors.jpg: every recipe of the benchmark on 3 seeds, then
#               benchmarks.studies.committee; about 2 CPU-hours per seed
#
# The real SDSS cutouts come from ../shared/data/sdss_gz2 (or SDSS=PATH). DEVICE=cuda trains the
# real benchmark's runs on a GPU (its CPU-second columns then do not apply).
set -euo pipefail
OUT=${1:?usage: bash scripts/make_doc_images.sh OUT_DIR [STEP...]}
shift
STEPS=${*:-synthetic report explain curve pretrain committee}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
IMAGES=${IMAGES:-docs/images}  # IMAGES=DIR writes the pictures there instead (to compare)
mkdir -p "$IMAGES"
REFERENCE=${REFERENCE:-../shared/data/galaxy10_reference.h5}
SDSS=${SDSS:-../shared/data/sdss_gz2}
DEVICE=${DEVICE:-cpu}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
study() {  # study NAME [OPTION...]: python -m benchmarks.studies.NAME on the real SDSS benchmark folder
    local name=$1; shift
    python -m "benchmarks.studies.$name" --out "$OUT/real" --source "$SDSS" --device "$DEVICE" "$@"
}

as_jpeg() {  # a PNG figure as the JPEG the docs show (quality 85, as galaxymorph saves photos)
    python -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("RGB").save(sys.argv[2], quality=85)' "$1" "$2"
}

step_synthetic() {
    python -m scripts.calibrate_synthetic --reference "$REFERENCE" --n-per-class 40 \
        --out-dir "$IMAGES" --examples-out "$OUT/synthetic_vs_real.png"
}

step_report() {
    [ -f "$OUT/default-run/report.html" ] || python -m galaxymorph run --out "$OUT/default-run" --threads 1 --overwrite
    python -m galaxymorph report "$OUT/default-run" --screenshot "$IMAGES/report.png"
}

step_explain() {
    study real --candidates narrow-30 --seeds 0
    python -m galaxymorph explain "$OUT/real/runs/narrow-30/seed0" --device "$DEVICE"
    cp "$OUT/real/runs/narrow-30/seed0/explain/gradcam++-sky_confident.jpg" "$IMAGES/explain_gallery_real.jpg"
    cp "$OUT/real/runs/narrow-30/seed0/explain/gradcam++-sky_localisation.png" "$IMAGES/explain_localisation_real.png"
}

step_curve() {
    study real --candidates narrow-30
    study curve
    cp "$OUT/real/curve/curve.png" "$IMAGES/real_learning_curve.png"
}

step_pretrain() {
    study pretrain --seeds 0 1
    cp "$OUT/real/pretrain/pretrain.png" "$IMAGES/pretrain_real.png"
}

step_committee() {
    study real --seed-epochs 10
    study committee
    as_jpeg "$OUT/real/committee/errors.png" "$IMAGES/real_shared_errors.jpg"
}

for step in $STEPS; do  # check every name before any work
    case $step in
        synthetic|report|explain|curve|pretrain|committee) ;;
        *) echo "unknown step: $step (steps: synthetic report explain curve pretrain committee)" >&2; exit 2 ;;
    esac
done
for step in $STEPS; do
    echo "--- $step" >&2
    "step_$step"
done
