#!/usr/bin/env bash
# Retrain chapters 5-8 after the batch-norm fix (issue 24), one run at a time, committing each as it lands.
#
# Run it on a host with AVX512_BF16 or AMX (the book's other chapters trained in mixed_bfloat16; elsewhere
# bfloat16 is emulated and a run takes hours), from a frozen worktree, so that later edits to the main
# checkout cannot change a run. Chapters 5-7 have landed and main trains them with momentum 0.9; chapter 8
# keeps 0.99 there until its runs land, so the worktree drops that pin first:
#
#   git worktree add ../ladder -b ladder-runs && cd ../ladder
#   # in cifar_lessons/book/chapters.py, delete the `batch_norm_momentum=0.99` of _EARLY_STOP (and its comment)
#   # then `cifar-lessons identities`, commit both, and start:
#   nohup bash scripts/retrain_ladder.sh > ladder.log 2>&1 &
#
# Why 0.9 (results/05/bn_diagnosis.json, scripts/bn_diagnosis.py): Keras' default 0.99 averages the batch
# statistics over about 100 steps, while at Adam's 1e-3 the weights still move fast, so the averages lag
# behind the network they describe (2.6 validation points after 150 steps from chapter 5's weights, 0.5 at
# momentum 0.9, 0.3 at momentum 0.99 with a learning rate of 1e-4). 0.9 is PyTorch's default (its 0.1).
#
# Step 0 moves the momentum-0.99 runs of chapters 5-8 to results/NN/momentum0.99/seedS (the control: batch
# norm's momentum changes no weight, only the moving statistics, so each old run is the new one's twin).
# Runs that earlier sessions landed on main (results/retrain) move into place. Then the main runs chapter by
# chapter, seeds 0-2 each (a chapter's verdict needs all three, and a session may end before the ladder
# does), then chapter 8's control with seeds 0-2. Copy each run that lands to results/retrain/NN/seedS on
# main and commit it there: only main outlives the session.
# A recorded run is skipped, an interrupted one resumes from its checkpoint: run the script again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
export CIFAR_LESSONS_DATA="${CIFAR_LESSONS_DATA:-$(cd .. && pwd)/shared/data/cifar10-jpeg.tar.gz}"

if ! python -c 'import sys; from cifar_lessons.book.chapters import get_chapter
sys.exit(any(get_chapter(c).config.batch_norm_momentum == 0.99 for c in ("05", "06", "07", "08")))'; then
  echo "error: a chapter of 5-8 still uses Keras' default batch-norm momentum (0.99); switch the recipe first" >&2
  exit 1
fi
if ! grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo && [ -z "${LADDER_ANY_HOST:-}" ]; then
  echo "error: this CPU has no AVX512_BF16/AMX; set LADDER_ANY_HOST=1 to train here anyway" >&2
  exit 1
fi

commit() {  # commit one landed run (its folder only), with a message that names it; nothing new, nothing done
  git add -- "$1"
  if git diff --cached --quiet -- "$1"; then return 0; fi
  git commit -q -m "$2" -- "$1" && echo "committed: $2"
}

for chapter in 05 06 07 08; do
  old="results/$chapter/momentum0.99"
  if [ -d "$old" ]; then continue; fi
  mkdir -p "$old/seed0"
  git mv "results/$chapter/record.json" "results/$chapter/history.json" "results/$chapter/model.keras" "$old/seed0/"
  for seed_dir in "results/$chapter"/seed* "results/$chapter"/control; do
    if [ -e "$seed_dir" ]; then git mv "$seed_dir" "$old/"; fi
  done
  git commit -q -m "Chapter $chapter: the runs with batch-norm momentum 0.99 move to $old, the control of the retrained ones"
done

# Runs that earlier sessions landed on main (results/retrain/NN/seedS, see its README) take their places.
for landed in results/retrain/[0-9][0-9]/seed[0-9]; do
  [ -d "$landed" ] || continue
  chapter="$(basename "$(dirname "$landed")")"; seed="${landed##*seed}"
  folder="results/$chapter"; if [ "$seed" != 0 ]; then folder="results/$chapter/seed$seed"; fi
  if [ -e "$folder/record.json" ]; then continue; fi
  mkdir -p "$folder"
  git mv "$landed/record.json" "$landed/history.json" "$landed/model.keras" "$folder/"
  git commit -q -m "Chapter $chapter seed $seed: the retrained run landed in $landed takes its place in $folder"
done

for chapter in 05 06 07 08; do
  for seed in 0 1 2; do
    folder="results/$chapter"; if [ "$seed" != 0 ]; then folder="results/$chapter/seed$seed"; fi
    cifar-lessons study --chapters "$chapter" --seeds "$seed"
    commit "$folder" "Run: chapter $chapter seed $seed with batch-norm momentum 0.9 ($(python -c 'from cifar_lessons.results import hardware_info, cpu_name; print(cpu_name(hardware_info()))'))"
  done
done
for seed in 0 1 2; do
  if python -c "import sys; from cifar_lessons.book.runs import control_status; from cifar_lessons.book.chapters import get_chapter
sys.exit(control_status(get_chapter('08'), $seed)['status'] != 'ok')"; then continue; fi  # recorded: skip
  cifar-lessons train 08 --control --seed "$seed"
  commit "results/08/control/seed$seed" "Run: chapter 8's control (chapter 7's recipe to 50 epochs, no early stopping), seed $seed"
done
echo "ladder done: regenerate the tables (cifar-lessons report --update-readme) and re-execute chapters 5-10"
