#!/usr/bin/env bash
# The campaign's "from scratch" lane (session 19; docs/loops.md): the default preset's six layers trained
# from random weights at LOOPS (default 1), on the data that data.sh's `stagedata` step made in $DATA (default
# /work/data) for the stages K to AA (STAGES): each stage's synthetic windows (0.65 in all, shared equally), each
# distinct set of real shards once (0.35 in all; stages that re-read the same shards are counted once), every stage's
# ranking windows, and the jinja validation windows. One schedule of MAX_STEPS (default 8,000) steps, meant
# to span several sessions: start it once, then continue it with --resume (the same variables).
#
#   SEED=40 NAME=scratchR1 bash training/recipe/scratch.sh                          # start
#   SEED=40 NAME=scratchR1 bash training/recipe/scratch.sh --resume runs/scratchR1  # continue it
#   SEED=40 NAME=scratchR1n RANK_WEIGHT=0 bash training/recipe/scratch.sh          # without the ranking loss
#
# Checkpoints every 100 steps under runs/NAME; the export lands in runs/NAME/final when the schedule ends
# (`patchcoder train --export runs/NAME --out DIR` exports the newest checkpoint before that).
set -euo pipefail
cd "${DATA:-/work/data}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$PWD/inductor-cache}
synth=() real=() rank=() seen=" " valid=""
# the lane's stages by name, in the order it began with: data made later (for the stage after the lane) must not
# join it on --resume
for x in ${STAGES:-aa k l m n o p q r s t u v w x y z}; do
  tok=tok256$x X=$(echo "$x" | tr 'a-z' 'A-Z')
  [ -d "$tok/synth-${X}1" ] && [ -d "$tok/real-${X}1" ] && [ -d "cand256$x/synth-${X}1" ] || continue
  synth+=("$tok/synth-${X}1"); rank+=("cand256$x/synth-${X}1"); valid=$tok/synth-valid
  # the real shards a stage read, by where its links point: a set read by an earlier stage is left out
  key=$(readlink -f "real-$X-src/shards/"* | sort | md5sum | cut -c1-16)
  case "$seen" in *" $key "*) ;; *) seen="$seen$key "; real+=("$tok/real-${X}1") ;; esac
done
[ ${#synth[@]} -gt 0 ] || { echo "no stage data in $PWD (data.sh stagedata)" >&2; exit 1; }
ws=$(python3 -c "print(round(0.65 / ${#synth[@]}, 6))"); wr=$(python3 -c "print(round(0.35 / ${#real[@]}, 6))")
args=()
for d in "${synth[@]}"; do args+=(--data "$d:$ws"); done
for d in "${real[@]}"; do args+=(--data "$d:$wr"); done
for d in "${rank[@]}"; do args+=(--rank "$d"); done
echo "scratch lane: ${#synth[@]} synthetic folders, ${#real[@]} real, ${#rank[@]} ranking; validation $valid" >&2
exec patchcoder train --preset default --set model.loops="${LOOPS:-1}" "${args[@]}" \
  --valid "$valid" --rank-valid "cand256${valid#tok256}" \
  --set data.seq_len=256 --set optim.batch_size=32 --set optim.lr="${LR:-1e-3}" --set optim.warmup_steps=100 \
  --set optim.max_steps="${MAX_STEPS:-8000}" --set run.checkpoint_every=100 --set run.eval_every=250 \
  --set run.eval_batches=5 --set optim.rank_weight="${RANK_WEIGHT:-1}" --set optim.rank_temperature=0.3 \
  --set optim.rank_batch=8 --set data.rank_len=512 --seed "${SEED:?set SEED}" --out "runs/${NAME:?set NAME}" \
  --no-progress "$@"
