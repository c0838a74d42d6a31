#!/usr/bin/env bash
# Measures one candidate for the shipping rule (patchcoder/assets/model/MODEL_CARD.md, "The shipping rule from
# stages N1, O1 and their mean on"), in $DATA (default /work/data) with patchcoder on PATH:
#
#   bash training/recipe/judge.sh runs/stageN1/final N1     # -> judge/N1/: wide.jsonl, cal.json, rv.json
#   CLEAN="clean/jinja/src/jinja2 clean/cli/httpie clean/starlette/starlette" bash ... # calibrated with clean code
#   (CLEAN is split on spaces: paths without spaces)
#   python benchmarks/decision.py report judge/LM/wide.jsonl judge/N1/wide.jsonl       # criteria 1-3
#
# The candidate is copied to ship<NAME> with the shipped decoding.json (mode, heads, undo weight), then two lanes
# run side by side, one thread each: (1) decision.py's records on synth-valid-wide (criteria 1-3); (2) the
# thresholds it would ship with, calibrated by the command decoding.json names (written into ship<NAME>), then
# realfix-valid's buggy and clean windows evaluated at them (criterion 4: rv.json's "at_thresholds"). The
# shipped model itself is measured the same way (NAME=LM, RUN_FINAL=the package's model folder).
set -euo pipefail
SRC=$(realpath "${1:?give the exported folder of the candidate}"); NAME=${2:?a short name}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cd "${DATA:-/work/data}"
for d in synth-valid-wide realfix-valid; do [ -d "$d" ] || { echo "no $d in $PWD (training/recipe/data.sh)" >&2; exit 1; }; done
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=${PYTHON:-python}
out=judge/$NAME ship=ship$NAME
rm -rf "$ship" && mkdir -p "$ship" "$out"
cp "$SRC"/model.safetensors "$SRC"/config.json "$SRC"/tokenizer.json "$ship"/
[ -f "$SRC/training.json" ] && cp "$SRC/training.json" "$ship"/
cp "$REPO/patchcoder/assets/model/decoding.json" "$ship/decoding.json"
( $PY "$REPO/benchmarks/decision.py" dump --checkpoint "$ship" --data synth-valid-wide --no-message \
    --out "$out/wide.jsonl" 2> "$out/wide.err" ) &
lane1=$!
trap 'kill $lane1 2>/dev/null || true' EXIT  # a failed calibration stops the other lane too
clean=()  # CLEAN="tree ...": clean code in the calibration, as decoding.json's command names it (recipe README)
for tree in ${CLEAN:-}; do clean+=(--clean-code "$tree"); done
patchcoder eval --checkpoint "$ship" --data synth-valid-wide --mode rank --no-message --calibrate 0.05 --by-edit \
  --save-min-score "${clean[@]}" --json --no-progress > "$out/cal.json" 2> "$out/cal.err"
patchcoder eval --checkpoint "$ship" --data realfix-valid --mode rank --false-alarms --no-message --json \
  --no-progress > "$out/rv.json" 2> "$out/rv.err"
wait "$lane1"
$PY - "$out/rv.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); t = r["at_thresholds"]
print(f"{sys.argv[1]}: realfix-valid at its thresholds: {t['false_alarms']} of {r['false_alarm_windows']} clean "
      f"windows alarmed; {t['shown']} changes shown for {r['examples']} fixes, {t['exact_shown']} exact")
EOF
