#!/bin/bash
# LOCO over the three corpora with three standardisations; then enrolment/speaker lines per fold
cd /work/main && source .venv/bin/activate
D=../shared/data
C="--corpus $D/ravdess-dev --corpus $D/nemo-pl/manifest.csv --corpus $D/korean-emotts/manifest.csv --map ravdess-dev:calm=neutral --classes angry happy neutral sad"
for norm in global corpus speaker; do
  start=$(date +%s)
  python main.py train $C --config /tmp/loco/recipe_loco.json --set train.speaker_norm=$norm --no-final --out /tmp/loco/run-$norm --cache /tmp/loco/cache > /tmp/loco/train-$norm.log 2>&1
  echo "$norm train rc=$? $(( $(date +%s) - start )) s" >> /tmp/loco/times.txt
done
echo done >> /tmp/loco/times.txt
