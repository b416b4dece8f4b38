"""Chapter 11's recipe at longer budgets: how accuracy on the offline copy grows with more epochs.

    python scripts/budget_chapter11.py --epochs 20 --seeds 0   # runs what is missing, one log line per epoch

The race holds the recipe to chapter 8's time to 85%; these runs lift that limit, changing nothing but the
number of epochs (the schedule stretches with it), to show what the recipe reaches on the JPEG copy when it
is given more time. Records go to results/11/budget/epochsE/seedS/ (model files not kept).
"""

import argparse

from cifar_lessons.book import budget
from cifar_lessons.data import load_cifar10
from cifar_lessons.going_further import ablations

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, nargs="+", default=[20])
parser.add_argument("--seeds", type=int, nargs="+", default=[0])
args = parser.parse_args()
data = load_cifar10()
failed = []
for epochs in args.epochs:
    for seed in args.seeds:
        config, run_dir = budget.budget_config(epochs, seed), budget.budget_dir(epochs, seed)
        label = f"{epochs} epochs, seed {seed}"
        if ablations.train_unless_recorded(label, config, data, run_dir) is None:
            failed.append(label)
if failed:
    raise SystemExit(f"{len(failed)} run(s) failed: {'; '.join(failed)}")
