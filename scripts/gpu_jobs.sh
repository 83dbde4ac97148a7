#!/usr/bin/env bash
# The GPU runs behind the shipped checkpoints, as run on the lent H100 (see README "Reproducing the results").
# Usage: bash scripts/gpu_jobs.sh PHASE   with PHASE one of: scratch, pretrain, finetune
#        bash scripts/gpu_jobs.sh cv NAME TRAIN_ARGS...   every official fold in its own process, all at once,
#             then python -m senet.crossval: e.g. cv se_densenet121_msld_v2 --arch se_densenet121 --epochs 60 ...
# Data: .data/*.tar.gz (msld.tar.gz: msld_v2 + msld_v1; nette/woof.tar.gz: the pretraining corpora), unpacked to
# .data/x (DATA=folder overrides the MSLD v2 folder). Outputs under runs/ and, on the device machine, copies of
# logs and small results under $OUT. LIMIT (seconds, default 540) stops the cv phase's folds in time for the
# finished ones to come back: a device command killed at its own limit returns nothing.
# The script stops at its first failing step with that step's exit status (parallel steps: after all of them
# end). In the cv phase a fold stopped at LIMIT (exit 124) is not a failure: crossval marks the card incomplete.
set -euo pipefail
shopt -s nullglob
export PYTHONUNBUFFERED=1
phase=${1:?phase}
out=${OUT:-runs/out}
mkdir -p .data/x runs "$out"
for t in .data/*.tar.gz; do
  [ -e "$t" ] || continue
  stamp=.data/x/.$(basename "$t").done
  [ -e "$stamp" ] || { tar xzf "$t" -C .data/x && touch "$stamp"; }
done
ls .data/x
MSLD=${DATA:-.data/x/msld_v2}

names=(); pids=()
run() {  # run NAME CMD...: in the background, log to runs/NAME.log; its exit status is the command's
  local name=$1; shift
  echo "== $name: $*" | tee "runs/$name.log"
  ( status=0; "$@" >>"runs/$name.log" 2>&1 || status=$?; echo "== exit $status ($name)" >>"runs/$name.log"
    exit $status ) &
  names+=("$name"); pids+=($!)
}

wait_all() {  # wait_all [ALLOWED_STATUS...]: wait for every run; exit with the first failure's status
  local i status failed=0
  for i in "${!pids[@]}"; do
    status=0; wait "${pids[$i]}" || status=$?
    if [ "$status" -ne 0 ] && [[ " $* " != *" $status "* ]]; then
      echo "== FAILED: ${names[$i]} (exit $status); last lines of runs/${names[$i]}.log:" >&2
      tail -n 20 "runs/${names[$i]}.log" >&2
      [ "$failed" -ne 0 ] || failed=$status
    fi
  done
  names=(); pids=()
  [ "$failed" -eq 0 ] || exit "$failed"
}

case $phase in
scratch)
  nvidia-smi -L; python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__)"
  run bench python3 scripts/bench_train_speed.py
  run cv_se_resnet18_scratch python3 -m senet.train --data $MSLD --cv --arch se_resnet18 --epochs 100 \
      --batch-size 32 --measure-throughput --out runs/se_resnet18_scratch
  run cv_resnet18_scratch python3 -m senet.train --data $MSLD --cv --arch resnet18 --epochs 100 \
      --batch-size 32 --measure-throughput --out runs/resnet18_scratch
  wait_all
  ;;
pretrain)
  have=(.data/x/imagenette); [ -d .data/x/imagewoof ] && have+=(.data/x/imagewoof)
  run pre_se_resnet18 python3 -m senet.pretrain --data "${have[@]}" --arch se_resnet18 --epochs 100 \
      --batch-size 256 --time-budget ${BUDGET:-420} --half --out runs/se_resnet18_pre
  run pre_se_densenet121 python3 -m senet.pretrain --data "${have[@]}" --arch se_densenet121 --epochs 100 \
      --batch-size 256 --compile --time-budget ${BUDGET:-420} --half --out runs/se_densenet121_pre
  wait_all
  cp runs/*_pre.safetensors runs/*_pre.json "$out"/
  ;;
finetune)
  run cv_se_resnet18_pre python3 -m senet.train --data $MSLD --cv --arch se_resnet18 --epochs ${EPOCHS_R:-100} \
      --batch-size 32 --lr 5e-4 --init runs/se_resnet18_pre.safetensors --measure-throughput --half \
      --title "SE-ResNet-18 · MSLD v2 · 6 classes" --out runs/se_resnet18_msld_v2
  run cv_se_densenet121_pre python3 -m senet.train --data $MSLD --cv --arch se_densenet121 \
      --epochs ${EPOCHS_D:-100} --batch-size 32 --lr 5e-4 --init runs/se_densenet121_pre.safetensors --compile \
      --measure-throughput --half --title "SE-DenseNet-121 · MSLD v2 · 6 classes" --out runs/se_densenet121_msld_v2
  wait_all
  cp runs/*_msld_v2.safetensors runs/*_msld_v2.json runs/*_msld_v2.md runs/*_msld_v2_confusion.png "$out"/
  ;;
cv)
  # Separate processes overlap on the GPU: one fold alone leaves it idle between the small kernels it launches.
  name=${2:?name}; shift 2
  export OMP_NUM_THREADS=${THREADS:-3}  # five launch-bound processes need their CPU cores for launching kernels
  folds=$(python3 -c 'import sys; from pathlib import Path; from senet.data import official_folds
print(*official_folds(Path(sys.argv[1])))' "$MSLD")
  for k in $folds; do
    run "${name}_fold$k" timeout "${LIMIT:-540}" python3 -m senet.train --data "$MSLD" --folds "$k" \
        --out "runs/$name" "$@"
  done
  wait_all 124
  python3 -m senet.crossval --out "runs/$name" | tee "runs/${name}_cv.log"
  # At most 8 files come back from a device command: the merged checkpoint, and the folds' cards and logs in one tar.
  cp "runs/$name".{safetensors,json,md} runs/"${name}"_confusion.png "$out"/
  tar czf "$out/${name}_folds.tgz" runs/"$name"_fold*.json runs/"$name"_fold*.md runs/"$name"_*.log
  ;;
*)
  echo "unknown phase $phase: use scratch, pretrain, finetune or cv" >&2; exit 2
  ;;
esac
for f in runs/*.log; do echo "##### $f"; { grep -vE "^\[fold[0-9]\] epoch [0-9]+/" "$f" || true; } | tail -n 40; done
[ "$phase" = cv ] || cp runs/*.log "$out"/
python3 - "$out" <<'PY'
import json, glob, sys, os
rows = {}
for card in sorted(glob.glob("runs/*.json")):
    data = json.load(open(card))
    m = data.get("metrics", {})
    rows[os.path.basename(card)] = {"cv": {k: v for k, v in m.get("cv", {}).items() if k != "folds"},
                                    "test": {k: m.get("test", {}).get(k) for k in ("accuracy", "macro_f1")},
                                    "heldout": m.get("heldout_accuracy"), "speed": data.get("training", {}).get("speed")}
json.dump(rows, open(os.path.join(sys.argv[1], "summary.json"), "w"), indent=1)
print(json.dumps(rows)[:6000])
PY
