#!/usr/bin/env bash
# The cross-domain table of docs/results.md: train on fer2013-mini's train split, report on its
# test split (in-domain) and on taiwanese-faces (a domain it never sees), 11 rows x 3 seeds.
#   tools/results/fer-taiwanese.sh DATA_DIR RUNS_DIR      (DATA_DIR holds fer2013-mini/ and taiwanese-faces/)
#   node --import tsx tools/results/aggregate.ts RUNS_DIR
# Needs @vladmandic/face-api and @vladmandic/human installed (dev dependencies here). Finished runs are skipped.
set -u
cd "$(dirname "$0")/../.."
D=${1:?data dir}
RUNS=${2:?runs dir}
mkdir -p "$RUNS"
COMMON="--source folder:$D/fer2013-mini --target taiwanese=folder:$D/taiwanese-faces --no-augment --batch-size 32 --no-console"
ZEIFE="--eife faceapi:recognition --eife faceapi:age-gender"
for seed in 0 1 2; do
  for row in base-scratch att-scratch attE-scratch base-frozen att-frozen attE-frozen attEs-frozen attEh-frozen base-xc att-xc attEs-xc; do
    out=$RUNS/$row-s$seed
    [ -f "$out/report.json" ] && continue
    case $row in
      base-scratch) a="--variant base --input-size 48 --width 0.125 --epochs 4 --t-max 4 --lr 2e-3";;
      att-scratch) a="--variant att --input-size 48 --width 0.125 --epochs 4 --t-max 4 --lr 2e-3";;
      attE-scratch) a="--variant att+eifp $ZEIFE --input-size 48 --width 0.125 --epochs 4 --t-max 4 --lr 2e-3";;
      base-frozen) a="--variant base --backbone faceapi:expression --freeze-backbone --epochs 4 --t-max 4 --lr 5e-4";;
      att-frozen) a="--variant att --backbone faceapi:expression --freeze-backbone --epochs 4 --t-max 4 --lr 5e-4";;
      attE-frozen) a="--variant att+eifp --backbone faceapi:expression --freeze-backbone $ZEIFE --epochs 4 --t-max 4 --lr 5e-4";;
      attEs-frozen) a="--variant att+eifp --backbone faceapi:expression --freeze-backbone $ZEIFE --eife-standardize --epochs 4 --t-max 4 --lr 5e-4";;
      attEh-frozen) a="--variant att+eifp --backbone faceapi:expression --freeze-backbone --eife human:faceres --eife faceapi:age-gender --eife-standardize --epochs 4 --t-max 4 --lr 5e-4";;
      base-xc) a="--variant base --backbone faceapi:age-gender --freeze-backbone --epochs 4 --t-max 4 --lr 5e-4";;
      att-xc) a="--variant att --backbone faceapi:age-gender --freeze-backbone --epochs 4 --t-max 4 --lr 5e-4";;
      attEs-xc) a="--variant att+eifp --backbone faceapi:age-gender --freeze-backbone $ZEIFE --eife-standardize --epochs 4 --t-max 4 --lr 5e-4";;
    esac
    echo "$(date -u +%H:%M:%S) start $row seed $seed" >> "$RUNS/log.txt"
    node --conditions=@dfd/source --import tsx packages/cli/src/bin.ts train $COMMON $a --seed $seed --out "$out" > "$out.stdout" 2> "$out.stderr"
    echo "$(date -u +%H:%M:%S) done $row seed $seed rc=$?" >> "$RUNS/log.txt"
  done
done
