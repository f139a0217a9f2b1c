#!/usr/bin/env bash
# One prepared run for a GPU lent for a few minutes: set up, then train the whole time.
#
#   scripts/train_gpu.sh OUT_FOLDER            (or OUT=folder scripts/train_gpu.sh)
#
# 1. install: only when the python has no torch/numpy/scipy (pip install -r requirements.txt
#    scipy into the current python; the CUDA wheel of torch on a GPU server);
# 2. copy the campaign (insar_gnss_3d.pt, insar_gnss_3d.ckpt, history.json) from SOURCE_DIR
#    (default resources/models) into OUT_FOLDER and train there: scenes are generated on the
#    training device (the GPU), with mixed precision (bfloat16 autocast where the GPU has it,
#    else float16 with a gradient scaler; core/train.py), resuming from the checkpoint, for
#    MINUTES of wall clock; model, checkpoint and history.json are rewritten atomically at
#    every validation point, so a run cut short still leaves the last one in OUT_FOLDER;
# 3. NPROC > 1 (default: the number of GPUs): torchrun --nproc_per_node=NPROC, DDP (NCCL on
#    GPUs, gloo on CPUs), rank 0 validates and writes;
# 4. the std head's calibration (core/calibrate.py) on model and checkpoint;
#    OUT_FOLDER/model_card.md: the history table (scripts/model_card.py), OUT_FOLDER/train.log.
#
# Environment: MINUTES (10), NPROC, BATCH (scenes per step and rank; 32 on a GPU, 16 on a
# CPU), DEVICE (auto), VALIDATE_EVERY (minutes; MINUTES/3), SOURCE_DIR, PYTHON, TRAIN_ARGS
# (more options of python -m insar_gnss_3d.core.train, e.g. --scene '{"size_px": 32}').
# Copy OUT_FOLDER/insar_gnss_3d.{pt,ckpt} and history.json back into resources/models.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${1:-${OUT:-}}"
if [ -z "$OUT_DIR" ]; then
    echo "usage: $0 OUTPUT_FOLDER   (or set OUT)" >&2
    exit 2
fi
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
MINUTES="${MINUTES:-10}"
DEVICE="${DEVICE:-auto}"
SOURCE_DIR="${SOURCE_DIR:-$ROOT/resources/models}"
TRAIN_ARGS="${TRAIN_ARGS:-}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON="$(command -v python3)"; fi
fi
T0=$(date +%s)

# -- 1. install what is missing ------------------------------------------------------------
if ! "$PYTHON" -c "import torch, numpy, scipy" 2>/dev/null; then
    echo "== installing requirements into $PYTHON"
    "$PYTHON" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements.txt" scipy
fi
# the package is imported as insar_gnss_3d: a link named so, as `make setup` makes it
mkdir -p "$ROOT/build/plugins"
[ -e "$ROOT/build/plugins/insar_gnss_3d" ] || ln -sfn "$ROOT" "$ROOT/build/plugins/insar_gnss_3d"
export PYTHONPATH="$ROOT/build/plugins${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

read -r GPUS CUDA <<<"$("$PYTHON" -c "import torch; print(torch.cuda.device_count(), torch.version.cuda or 'none')")"
NPROC="${NPROC:-$(( GPUS > 0 ? GPUS : 1 ))}"
if [ "$GPUS" -gt 0 ] && [ "$DEVICE" != cpu ]; then BATCH="${BATCH:-32}"; else BATCH="${BATCH:-16}"; fi
VALIDATE_EVERY="${VALIDATE_EVERY:-$("$PYTHON" -c "print(max(0.05, $MINUTES / 3))")}"
echo "== $GPUS GPU(s) (CUDA $CUDA), $NPROC process(es), batch $BATCH per process, $MINUTES min, device $DEVICE"
[ "$GPUS" -gt 0 ] && command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

# -- 2. the campaign's files ---------------------------------------------------------------
for f in insar_gnss_3d.pt insar_gnss_3d.ckpt history.json; do
    if [ -f "$SOURCE_DIR/$f" ] && [ ! -e "$OUT_DIR/$f" ]; then cp "$SOURCE_DIR/$f" "$OUT_DIR/$f"; fi
done

# -- 3. train ------------------------------------------------------------------------------
ARGS=(-m insar_gnss_3d.core.train --model-dir "$OUT_DIR" --minutes "$MINUTES"
      --validate-every-minutes "$VALIDATE_EVERY" --batch-size "$BATCH" --device "$DEVICE")
# shellcheck disable=SC2206  # TRAIN_ARGS is split like a command line on purpose
[ -n "$TRAIN_ARGS" ] && eval "ARGS+=($TRAIN_ARGS)"
echo "== setup took $(( $(date +%s) - T0 )) s"
if [ "$NPROC" -gt 1 ]; then
    # CPU processes share the cores: one thread each unless told otherwise
    [ "$GPUS" -gt 0 ] || export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" "${ARGS[@]}" 2>&1 | tee "$OUT_DIR/train.log"
else
    "$PYTHON" "${ARGS[@]}" 2>&1 | tee "$OUT_DIR/train.log"
fi

# -- 4. calibrate the std head (when the network has one), then summary ---------------------
"$PYTHON" -m insar_gnss_3d.core.calibrate "$OUT_DIR/insar_gnss_3d.pt" --checkpoint "$OUT_DIR/insar_gnss_3d.ckpt" \
    --skip-without-std-head 2>&1 | tee -a "$OUT_DIR/train.log"
"$PYTHON" "$ROOT/scripts/model_card.py" --history "$OUT_DIR/history.json" | tee "$OUT_DIR/model_card.md"
echo "== done in $(( $(date +%s) - T0 )) s; files in $OUT_DIR:"
ls -l "$OUT_DIR"
