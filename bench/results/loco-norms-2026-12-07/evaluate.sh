#!/bin/bash
# each LOCO fold's model on its held-out corpus: plain, speaker-adapted and enrolment lines
cd /work/main && source .venv/bin/activate
D=../shared/data
declare -A PATHS=([ravdess-dev]=$D/ravdess-dev [nemo-pl]=$D/nemo-pl/manifest.csv [korean-emotts]=$D/korean-emotts/manifest.csv)
for norm in "$@"; do
  run=/tmp/loco/run-$norm
  python - "$run" > /tmp/loco/folds-$norm.txt <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/metrics.json"))
for f in m["folds"]:
    print(f["fold"], f["held_out"])
PY
  while read fold held; do
    for adapt in none speaker enrol; do
      map=""; [ "$held" = "ravdess-dev" ] && map="--map calm=neutral"
      python main.py evaluate --model $run/fold_$fold --corpus ${PATHS[$held]} $map --classes angry happy neutral sad --cache /tmp/loco/cache --adapt $adapt --json --no-progress > /tmp/loco/eval-$norm-$held-$adapt.json 2>/tmp/loco/eval-$norm-$held-$adapt.err
      echo "$norm $held $adapt rc=$?" >> /tmp/loco/eval-times.txt
    done
  done < /tmp/loco/folds-$norm.txt
done
