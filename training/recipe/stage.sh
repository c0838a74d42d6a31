#!/usr/bin/env bash
# One stage of the training campaign with stage G1's settings (MODEL_CARD.md), on the data that data.sh's
# `stagedata` step made for STAGE. Run in $DATA (default /work/data) with patchcoder on PATH:
#
#   STAGE=J FROM=/path/to/patchcoder/assets/model SEED=18 bash training/recipe/stage.sh
#   STAGE=J FROM=... SEED=18 NAME=stageJ1w RANK_WEIGHT=2 bash training/recipe/stage.sh   # an arm
#   ... the same variables ... bash training/recipe/stage.sh --resume runs/stageJ1          # continue it
#
# Checkpoints every 50 steps under runs/NAME (default stage<STAGE>1); the export lands in runs/NAME/final.
# One thread per run (OMP_NUM_THREADS=1 unless set): the campaign runs two arms side by side on 2 cores.
set -euo pipefail
X=${STAGE:?set STAGE, e.g. J}
x=$(echo "$X" | tr 'A-Z' 'a-z')
cd "${DATA:-/work/data}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$PWD/inductor-cache}
exec patchcoder train --preset default --init-from "${FROM:?set FROM, the weights to start from}" \
  --data "tok256$x/real-${X}1:0.35" --data "tok256$x/synth-${X}1:0.65" --valid "tok256$x/synth-valid" \
  --rank "cand256$x/synth-${X}1" --rank-valid "cand256$x/synth-valid" \
  --set data.seq_len=256 --set optim.batch_size=32 --set optim.lr=5e-4 --set optim.warmup_steps=20 \
  --set optim.max_steps="${MAX_STEPS:-600}" --set run.checkpoint_every=50 --set run.eval_every=100 \
  --set run.eval_batches=5 --set optim.rank_weight="${RANK_WEIGHT:-1}" --set optim.rank_temperature=0.3 \
  --set optim.rank_batch=8 --set data.rank_len=512 --seed "${SEED:?set SEED}" --out "runs/${NAME:-stage${X}1}" \
  --no-progress "$@"
