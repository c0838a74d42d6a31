#!/usr/bin/env bash
# Rebuilds the training and evaluation data of issue 13 (items 1 and 4) from fetched mirrors and PyPI.
# Nothing here downloads a repository: the mirrors are bare git directories brought onto the machine
# beforehand (the search tool's `fetch github:OWNER/NAME`), at the commits listed in README.md beside this
# file. Every output lives under $DATA, outside the repository; never commit any of it.
#
#   MIRRORS=/work/.mirror DATA=/work/data bash training/recipe/data.sh            # everything
#   MIRRORS=/work/.mirror DATA=/work/data bash training/recipe/data.sh realfix    # one step
#
# Steps (in order): mine split heldout realfix packages synth evalsynth clean evalmore evalfresh evalfresh2 evalfresh3 evalfresh4; stagedata (one stage's data, by
# variables: see the step) is not among the defaults. Mirror paths come from
# variables: MIRROR_<owner>_<name> (non-alphanumerics as _), default $MIRRORS/<owner>+<name>/repo.
# Not done here: tokenizing (waits for the "no change" examples) and training.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
MIRRORS=${MIRRORS:-/work/.mirror}
DATA=${DATA:-/work/data}
PATCHCODER=${PATCHCODER:-patchcoder}
PYTHON=${PYTHON:-python}
PIP=${PIP:-pip}
JOBS=${JOBS:-2}
NICE=${NICE:-nice -n 5}

TRAIN_REPOS=(PyCQA/flake8 benoitc/gunicorn cookiecutter/cookiecutter dateutil/dateutil encode/httpx
             marshmallow-code/marshmallow more-itertools/more-itertools pallets/click pallets/itsdangerous
             pallets/werkzeug psf/black pypa/packaging pytest-dev/pytest python-attrs/attrs)
VALID_REPOS=(pallets/jinja)          # the validation split of the mined data
TEST_REPOS=(Textualize/rich)         # the test split
HELDOUT_REPOS=(pallets/flask psf/requests)  # held-out synthetic bugs and real commits
REALFIX_REPOS=(tornadoweb/tornado scrapy/scrapy networkx/networkx httpie/cli encode/starlette aio-libs/aiohttp)
REALFIX_VALID=pallets/jinja,httpie/cli,encode/starlette  # real fixes for choosing things; the rest: test
# clean code for calibrating what `suggest` shows (owner/name:package folder at HEAD): the three validation
# repositories, and (session 16) six more never mined, installed or trained on (checked by hash; README.md)
CLEAN_TREES=(pallets/jinja:src/jinja2 httpie/cli:httpie encode/starlette:starlette
             pallets/markupsafe:src/markupsafe jd/tenacity:tenacity hynek/structlog:src/structlog
             Delgan/loguru:loguru arrow-py/arrow:arrow tqdm/tqdm:tqdm)

mirror() {  # owner/name -> its bare git directory
  local var="MIRROR_$(echo "$1" | tr -c 'A-Za-z0-9\n' '_')"
  local path=${!var:-$MIRRORS/${1/\//+}/repo}
  [ -d "$path" ] || { echo "no mirror for $1 at $path (fetch it, or set $var)" >&2; exit 1; }
  echo "$path"
}

named() {  # NAME=PATH arguments for `patchcoder mine`
  local r
  for r in "$@"; do echo "$r=$(mirror "$r")"; done
}

checkout() {  # owner/name -> $DATA/src/<owner>+<name>: the HEAD tree of its mirror (no history)
  local dir="$DATA/src/${1/\//+}"
  rm -rf "$dir" && mkdir -p "$dir"
  git --git-dir="$(mirror "$1")" archive HEAD | tar -x -C "$dir"
  echo "$dir"
}

# 1. Real commits of the 16 model-card repositories. --all-commits: these histories are mostly merges of
#    pull requests, so the first-parent walk alone sees half of the commits (58,560 seen with it, as before).
step_mine() {
  $NICE $PATCHCODER mine $(named "${TRAIN_REPOS[@]}" "${VALID_REPOS[@]}" "${TEST_REPOS[@]}") \
    --all-commits --out "$DATA/mined-train" --jobs "$JOBS" --no-progress
}

# 2. By repository; jinja lands in valid and rich in test with seed 0 (pinned as well, so it cannot move).
step_split() {
  $PATCHCODER split "$DATA/mined-train" --out "$DATA/splits" --valid 0.04 --test 0.04 --seed 0 \
    --valid-repos "$(IFS=,; echo "${VALID_REPOS[*]}")" --test-repos "$(IFS=,; echo "${TEST_REPOS[*]}")"
}

# 3. Held-out histories: flask + requests (real held-out commits), and the repositories mined only for the
#    real-bug-fix evaluation sets.
step_heldout() {
  $NICE $PATCHCODER mine $(named "${HELDOUT_REPOS[@]}") --all-commits --out "$DATA/mined-heldout" \
    --jobs "$JOBS" --no-progress
  $NICE $PATCHCODER mine $(named "${REALFIX_REPOS[@]}") --all-commits --out "$DATA/mined-realfix-src" \
    --jobs "$JOBS" --no-progress
}

# 4. Real single-statement bug fixes from every held-out history (training/recipe/realfixes.py).
step_realfix() {
  $NICE $PYTHON "$HERE/realfixes.py" "$DATA/mined-heldout" "$DATA/splits/valid" "$DATA/splits/test" \
    "$DATA/mined-realfix-src" --train "$DATA/splits/train" --valid-repos "$REALFIX_VALID" \
    --out-valid "$DATA/realfix-valid" --out-test "$DATA/realfix-test" --seed 0
}

# 5. PyPI packages for synthetic data, pinned in packages.txt (licences and file counts: packages.tsv).
#    One by one, each into its own folder (a failure stops nothing), then merged into one folder whose
#    top-level packages `synth --per-package` names synth:pypi/<package>. The three top-level test suites
#    some wheels ship beside their package are removed (synth skips tests/ and test_*.py by itself).
step_packages() {
  local stage="$DATA/pkgs/stage" pypi="$DATA/pkgs/pypi" spec name failed=0
  mkdir -p "$stage" "$DATA/pkgs/logs"
  while read -r spec; do
    [ -n "$spec" ] || continue
    name=${spec%%==*}
    [ -f "$stage/$name/.ok" ] && continue
    rm -rf "${stage:?}/$name"
    if timeout 1200 $NICE $PIP install --quiet --disable-pip-version-check --no-deps --no-compile \
        --target "$stage/$name" "$spec" > "$DATA/pkgs/logs/$name.log" 2>&1; then
      touch "$stage/$name/.ok"
    else
      echo "FAILED: $spec (see $DATA/pkgs/logs/$name.log)" >&2; failed=$((failed + 1))
    fi
  done < "$HERE/packages.txt"
  rm -rf "$pypi" && mkdir -p "$pypi"
  while read -r spec; do
    name=${spec%%==*}
    [ -f "$stage/$name/.ok" ] && cp -a --no-clobber "$stage/$name/." "$pypi/"
  done < "$HERE/packages.txt"
  rm -rf "$pypi/.ok" "$pypi/tests" "$pypi/heat_integrationtests" "$pypi/yapftests"
  echo "packages: $failed failed; $(find "$pypi" -name '*.py' | wc -l) .py files in $pypi" >&2
}

# 6. Synthetic pairs: the standard library, the packages and the training split's mined files, exact
#    duplicates skipped; 12 bugs per file. Then the evaluation sets (seed 1): jinja (validation) and
#    flask + requests (held out) from their src/ trees at the mirrors' HEAD.
step_synth() {
  $NICE $PATCHCODER synth stdlib "$DATA/pkgs/pypi" "$DATA/splits/train" --per-package --seed 0 --per-file 12 \
    --jobs "$JOBS" --out "$DATA/synth-train" --no-progress --resume
}

step_evalsynth() {
  local jinja flask requests httpie starlette wide="$DATA/src/valid-wide"
  jinja=$(checkout pallets/jinja); flask=$(checkout pallets/flask); requests=$(checkout psf/requests)
  httpie=$(checkout httpie/cli); starlette=$(checkout encode/starlette)
  $PATCHCODER synth --per-package "$jinja/src" --evaluation-set --seed 1 --out "$DATA/synth-valid" \
    --jobs "$JOBS" --no-progress
  $PATCHCODER synth --per-package "$flask/src" "$requests/src" --evaluation-set --seed 1 \
    --out "$DATA/synth-heldout" --jobs "$JOBS" --no-progress
  # a wider validation set for choosing the class mix: the packages of the three real-fix validation
  # repositories (jinja2, httpie, starlette), 8 bugs per file
  rm -rf "$wide" && mkdir -p "$wide" && cp -r "$jinja/src/jinja2" "$httpie/httpie" "$starlette/starlette" "$wide/"
  $PATCHCODER synth --per-package "$wide" --evaluation-set --seed 1 --per-file 8 --out "$DATA/synth-valid-wide" \
    --jobs "$JOBS" --no-progress
}

# 6b. Clean code (library code taken as correct) for `patchcoder eval --clean-code`: each CLEAN_TREES package
#    folder at its mirror's HEAD, into $DATA/clean/<name>/<folder> (e.g. clean/jinja/src/jinja2).
step_clean() {
  local spec repo sub name
  for spec in "${CLEAN_TREES[@]}"; do
    repo=${spec%%:*}; sub=${spec#*:}; name=${repo#*/}
    rm -rf "$DATA/clean/$name" && mkdir -p "$DATA/clean/$name"
    git --git-dir="$(mirror "$repo")" archive HEAD "$sub" | tar -x -C "$DATA/clean/$name"
    echo "clean: $repo $sub: $(find "$DATA/clean/$name" -name '*.py' | wc -l) .py files" >&2
  done
}

# 7. One training stage's data (session 12 on; stages E-I made the same from synth-train's shards): fresh
#    synthetic pairs (a new seed, SYNTH_FILES files sampled from the packages), two thirds of their shards
#    tokenised, the last third as ranking windows; the training split's shards REAL_SHARDS (a `sed` range
#    over their sorted names; 1-48 were read by stages E-I); the jinja validation windows, made as every
#    stage's. Into $DATA/tok256<x>/{synth-<X>1,real-<X>1,synth-valid} and $DATA/cand256<x>/{synth-<X>1,
#    synth-valid} for STAGE=<X>. Stage J: STAGE=J SYNTH_SEED=2 SYNTH_FILES=2400 REAL_SHARDS=49,60.
#    SYNTH_MIX (optional): synth's --mix, the class mix (factors on the draw weights).
#    The synthetic pairs resume; the token and candidate folders do not: remove them to make them again.
step_stagedata() {
  local X=${STAGE:?set STAGE, e.g. J} x seed=${SYNTH_SEED:?} files=${SYNTH_FILES:-2400} real=${REAL_SHARDS:?}
  x=$(echo "$X" | tr 'A-Z' 'a-z')
  DATA=$(realpath "$DATA")  # the links below must not depend on where the step was run from
  local synth="$DATA/synth-$X" src="$DATA/synth-$X-src" csrc="$DATA/synth-${X}c-src" rsrc="$DATA/real-$X-src"
  local tok="$DATA/tok256$x" cand="$DATA/cand256$x" shards i n cut
  $NICE $PATCHCODER synth "$DATA/pkgs/pypi" --per-package --seed "$seed" --per-file 12 --max-files "$files" \
    ${SYNTH_MIX:+--mix "$SYNTH_MIX"} --jobs "$JOBS" --out "$synth" --no-progress --resume
  rm -rf "$src" "$csrc" "$rsrc" && mkdir -p "$src/shards" "$csrc/shards" "$rsrc/shards"
  mapfile -t shards < <(ls "$synth"/shards/*.parquet | sort)
  n=${#shards[@]}; cut=$((n * 2 / 3))
  [ "$n" -ge 3 ] || { echo "stage $X: $n synthetic shards in $synth, at least 3 needed" >&2; exit 1; }
  for i in "${!shards[@]}"; do
    if [ "$i" -lt "$cut" ]; then ln -s "${shards[$i]}" "$src/shards/"; else ln -s "${shards[$i]}" "$csrc/shards/"; fi
  done
  ls "$DATA"/splits/train/shards/*.parquet | sort | sed -n "${real}p" | while read -r f; do ln -s "$f" "$rsrc/shards/"; done
  echo "stage $X: $cut synthetic shards tokenised, $((n - cut)) as ranking windows, $(ls "$rsrc/shards" | wc -l) real" >&2
  $NICE $PATCHCODER tokenize --data "$DATA/synth-valid" --out "$tok/synth-valid" --max-tokens 256 --no-change 0.5 \
    --drop-message 0.5 --jobs "$JOBS" --no-progress
  $NICE $PATCHCODER candidates --data "$DATA/synth-valid" --out "$cand/synth-valid" --max-tokens 256 --drop-message 0 \
    --no-change 0.5 --negatives 15 --jobs 1 --no-progress
  $NICE $PATCHCODER tokenize --data "$src" --out "$tok/synth-${X}1" --max-tokens 256 --no-change 0.5 \
    --drop-message 0.5 --jobs "$JOBS" --no-progress
  $NICE $PATCHCODER tokenize --data "$rsrc" --out "$tok/real-${X}1" --max-tokens 256 --no-change 0.3 \
    --jobs "$JOBS" --no-progress
  $NICE $PATCHCODER candidates --data "$csrc" --out "$cand/synth-${X}1" --max-tokens 256 --drop-message 0.5 \
    --no-change 0.5 --negatives 15 --jobs "$JOBS" --no-progress
}

# 6c. (session 17) More synthetic validation bugs, for telling stages apart: the six clean-code packages never
#    mined, installed or trained on (clean/, step 6b), 8 bugs per file as synth-valid-wide. Read beside it, the
#    two sets hold about 1,700 bugs (records of both, concatenated, for `decision.py report` and `compare`).
step_evalmore() {
  local more="$DATA/src/valid-more" spec repo sub name
  rm -rf "$more" && mkdir -p "$more"
  for spec in "${CLEAN_TREES[@]:3}"; do
    repo=${spec%%:*}; sub=${spec#*:}; name=${repo#*/}
    [ -d "$DATA/clean/$name/$sub" ] || { echo "no $DATA/clean/$name/$sub: run the clean step first" >&2; exit 1; }
    cp -r "$DATA/clean/$name/$sub" "$more/"
  done
  $PATCHCODER synth --per-package "$more" --evaluation-set --seed 1 --per-file 8 --out "$DATA/synth-valid-more" \
    --jobs "$JOBS" --no-progress
}

add_trees() {  # DEST OWNER/NAME:PATH...: each PATH (a folder or a .py file) of its mirror's HEAD into DEST/<its name>
  local dest=$1 spec repo sub name tmp; shift
  for spec in "$@"; do
    repo=${spec%%:*}; sub=${spec#*:}; name=$(basename "$sub" .py); tmp=$(mktemp -d)
    git --git-dir="$(mirror "$repo")" archive HEAD "$sub" | tar -x -C "$tmp"
    mkdir -p "$dest/$name"
    if [ -d "$tmp/$sub" ]; then cp -r "$tmp/$sub/." "$dest/$name/"; else cp "$tmp/$sub" "$dest/$name/"; fi
    rm -rf "$tmp"
  done
}

# 6d. (session 17) A fresh validation set for the next shipping decision, made before any model was read on it:
#    new bugs (seed 2) in the files of synth-valid-wide and synth-valid-more, and bugs in five more packages never
#    mined, installed or trained on (FRESH_TREES; none of their files byte-identical to a file of pkgs/).
FRESH_TREES=(python-humanize/humanize:src/humanize jazzband/prettytable:src/prettytable r1chardj0n3s/parse:parse.py
             astanin/python-tabulate:tabulate grantjenks/python-sortedcontainers:src/sortedcontainers)
step_evalfresh() {
  local fresh="$DATA/src/valid-fresh"
  for d in "$DATA/src/valid-wide" "$DATA/src/valid-more"; do
    [ -d "$d" ] || { echo "no $d: run the evalsynth and evalmore steps first" >&2; exit 1; }
  done
  rm -rf "$fresh" && mkdir -p "$fresh" && cp -r "$DATA/src/valid-wide/." "$DATA/src/valid-more/." "$fresh/"
  add_trees "$fresh" "${FRESH_TREES[@]}"
  $PATCHCODER synth --per-package "$fresh" --evaluation-set --seed 2 --per-file 8 --out "$DATA/synth-valid-fresh" \
    --jobs "$JOBS" --no-progress
}

# 6e. (session 19) A second fresh validation set, for the candidates after the four read on synth-valid-fresh:
#    new bugs (seed 3) in synth-valid-fresh's files, and bugs in six more packages never mined, installed or
#    trained on (FRESH2_TREES; none of their files byte-identical to a file of pkgs/). Made before any model was
#    read on it; a synthetic bug that does not fit one window is left out by the evaluation (build_cases).
FRESH2_TREES=(Suor/funcy:funcy mahmoud/glom:glom tkem/cachetools:src/cachetools jab/bidict:bidict
              erikrose/parsimonious:parsimonious jmespath/jmespath.py:jmespath)
step_evalfresh2() { fresh_set valid-fresh valid-fresh2 3 "${FRESH2_TREES[@]}"; }

fresh_set() {  # FROM TO SEED TREES...: src/FROM's files and TREES into src/TO, then synth-TO's bugs with SEED
  local from="$DATA/src/$1" to="$DATA/src/$2" seed=$3; shift 3
  [ -d "$from" ] || { echo "no $from: make that set first" >&2; exit 1; }
  rm -rf "$to" && mkdir -p "$to" && cp -r "$from/." "$to/"
  add_trees "$to" "$@"
  $PATCHCODER synth --per-package "$to" --evaluation-set --seed "$seed" --per-file 8 --out "$DATA/synth-${to##*/}" \
    --jobs "$JOBS" --no-progress
}

# 6f. (session 19) A third: seed 4 over synth-valid-fresh2's files, and five more packages never mined, installed or
#    trained on (FRESH3_TREES; none of their non-empty files byte-identical to a file of pkgs/).
FRESH3_TREES=(martinblech/xmltodict:xmltodict.py dbader/schedule:schedule un33k/python-slugify:slugify
              keleshev/schema:schema jaraco/inflect:inflect)
step_evalfresh3() { fresh_set valid-fresh2 valid-fresh3 4 "${FRESH3_TREES[@]}"; }

# 6g. (session 20) A fourth: seed 5 over synth-valid-fresh3's files, and six more packages never mined, installed or
#    trained on (FRESH4_TREES; none of their non-empty files byte-identical to a file of pkgs/: lark and colorama
#    were dropped for that, some of their files being vendored by installed packages).
FRESH4_TREES=(theskumar/python-dotenv:src/dotenv msiemens/tinydb:tinydb pallets-eco/blinker:src/blinker
              gruns/icecream:icecream docopt/docopt:docopt.py python-validators/validators:src/validators)
step_evalfresh4() { fresh_set valid-fresh3 valid-fresh4 5 "${FRESH4_TREES[@]}"; }

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(mine split heldout realfix packages synth evalsynth clean evalmore evalfresh evalfresh2 evalfresh3 evalfresh4)
for s in "${steps[@]}"; do
  echo "== $s" >&2
  "step_$s"
done
