#!/usr/bin/env bash
# Chapter 8's control runs for the batch-norm fix (issue 24), one at a time; chapters 5-8 themselves have landed.
#
# Chapters 5-8 have landed with momentum 0.9 (their momentum-0.99 runs are in results/NN/momentum0.99/), and so
# have chapter 8's controls for seeds 2 and 0 (both on AMD); what is left is the control for seed 1. Run it on
# an Intel host, as chapter 8's seed-1 run was, so that the two are a pair (any host needs AVX512_BF16 or AMX:
# the book's runs trained in mixed_bfloat16, which is emulated and hours slower elsewhere), from a frozen
# worktree, so that later edits to the main checkout cannot change a run:
#
#   git worktree add ../ladder -b ladder-runs && cd ../ladder
#   nohup bash scripts/retrain_ladder.sh > ladder.log 2>&1 &
#
# Copy each control that lands (record.json and history.json; controls keep no model) to
# results/08/control/seedS on main and commit it there: only main outlives the session. A control pairs with
# chapter 8's run of its seed only on the same kind of machine (Intel hosts for seeds 0 and 1), so chapter 8
# reads an AMD control of those seeds as a separate comparison.
#
# Why 0.9 (results/05/bn_diagnosis.json, scripts/bn_diagnosis.py): Keras' default 0.99 averages the batch
# statistics over about 100 steps, while at Adam's 1e-3 the weights still move fast, so the averages lag
# behind the network they describe (2.6 validation points after 150 steps from chapter 5's weights, 0.5 at
# momentum 0.9, 0.3 at momentum 0.99 with a learning rate of 1e-4). 0.9 is PyTorch's default (its 0.1).
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

for seed in 0 1 2; do
  if python -c "import sys; from cifar_lessons.book.runs import control_status; from cifar_lessons.book.chapters import get_chapter
sys.exit(control_status(get_chapter('08'), $seed)['status'] != 'ok')"; then continue; fi  # recorded: skip
  cifar-lessons train 08 --control --seed "$seed"
  commit "results/08/control/seed$seed" "Run: chapter 8's control (chapter 7's recipe to 50 epochs, no early stopping), seed $seed"
done
echo "ladder done: regenerate the tables (cifar-lessons report --update-readme) and re-execute chapters 5-10"
