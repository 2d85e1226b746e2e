#!/bin/bash
# evaluate FE: cross-corpus evaluations of frontend FE's single-corpus models, and enrolment
# lines of its LOCO folds (main.py evaluate, features from the shared cache)
HERE=$(cd "$(dirname "$0")" && pwd); cd "$HERE/../../.." && source .venv/bin/activate
fe=$1; D=../shared/data; OUT=${OUT:-/tmp/cand}; CACHE=${CACHE:-/tmp/loco/cache}
declare -A PATHS=([ravdess-dev]=$D/ravdess-dev [nemo-pl]=$D/nemo-pl/manifest.csv [korean-emotts]=$D/korean-emotts/manifest.csv)
E="--classes angry happy neutral sad --cache $CACHE --json --no-progress"
one() {  # model, corpus, out name, adapt
  map=""; [ "$2" = "ravdess-dev" ] && map="--map calm=neutral"
  [ -s $OUT/eval-$3-$4.json ] && return
  python main.py evaluate --model $1 --corpus ${PATHS[$2]} $map $E --adapt $4 > $OUT/eval-$3-$4.json 2>$OUT/eval-$3-$4.err
  echo "eval $3 $4 rc=$?" >> $OUT/times.txt
}
one $OUT/run-$fe-RN/fold_2 korean-emotts $fe-R-on-korean-emotts none
one $OUT/run-$fe-RN/fold_1 korean-emotts $fe-N-on-korean-emotts none
one $OUT/run-$fe-RK/fold_1 nemo-pl $fe-K-on-nemo-pl none
if [ -f $OUT/run-$fe/metrics.json ]; then
  python - $OUT/run-$fe > $OUT/folds-$fe.txt <<'PY'
import json, sys
for f in json.load(open(sys.argv[1] + "/metrics.json"))["folds"]:
    print(f["fold"], f["held_out"])
PY
  while read fold held; do one $OUT/run-$fe/fold_$fold $held $fe-loco-$held enrol; done < $OUT/folds-$fe.txt
fi
