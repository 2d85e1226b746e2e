#!/bin/bash
# The candidate runs of issue 20 item 5, one at a time (they ran from /tmp/cand with the feature
# cache /tmp/loco/cache; change OUT and CACHE to run them elsewhere). Every run: the cheap
# recipe recipe_loco.json (one network, no channel variants, 30 epochs, patience 8), no final
# model. A two-corpus LOCO run's fold k trains on the other corpus alone (the single-corpus
# rows); --max-folds 1 keeps only its first fold.
HERE=$(cd "$(dirname "$0")" && pwd); cd "$HERE/../../.." && source .venv/bin/activate
OUT=${OUT:-/tmp/cand}; CACHE=${CACHE:-/tmp/loco/cache}; D=../shared/data
R="--corpus $D/ravdess-dev"; N="--corpus $D/nemo-pl/manifest.csv"; K="--corpus $D/korean-emotts/manifest.csv"
L="--map ravdess-dev:calm=neutral --classes angry happy neutral sad"
run() {  # name, extra args
  name=$1; shift
  start=$(date +%s)
  python main.py train $L --config "$HERE/recipe_loco.json" --no-final --out $OUT/run-$name --cache $CACHE "$@" > $OUT/train-$name.log 2>&1
  echo "$name rc=$? $(( $(date +%s) - start )) s" >> $OUT/times.txt
}
SE="--frontend speech_embedding+ge2e"
WB4="--frontend whisper-base --frame-pool 4"
# today's frontend over R+N+K is bench/results/loco-norms-2026-12-07/run-global (same recipe)
run se-RN $R $N $SE
run se-RK $R $K $SE --max-folds 1
run se-none $R $N $K $SE --balance none
run wb4 $R $N $K $WB4
run wb4-RN $R $N $WB4
run wb4-RK $R $K $WB4 --max-folds 1
run wt2 $R $N $K --frontend whisper-tiny.en --frame-pool 4
run wb4se $R $N $K --frontend whisper-base+speech_embedding+ge2e
for fe in se wb4; do bash "$HERE/evals.sh" $fe; done
