"""Chapter 11's ablation: the recipe at a shorter budget, whole and with one technique removed at a time.

    python scripts/ablate_chapter11.py --seeds 0          # runs what is missing, one log line per epoch

Every run trains for ``ablations.ABLATION_EPOCHS`` epochs (the recipe trains for more); the full recipe's run
comes first and also scores weight averaging and the test-time augmentations on its own network. Records
go to results/11/ablation/<technique>/seedS/ (the model files are not kept); the chapter's notebook reads
them with ``ablations.ablation_table``. Runs whose record matches the current recipe are skipped, so a stopped
study resumes where it stopped.
"""

import argparse
import dataclasses

from cifar_lessons.data import load_cifar10
from cifar_lessons.going_further import ablations

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seeds", type=int, nargs="+", default=[0])
parser.add_argument("--only", nargs="*", default=None, help="technique names to run (default: all)")
args = parser.parse_args()
data = load_cifar10()
failed = []
for name, config in ablations.ablation_configs().items():
    if args.only and name not in args.only:
        continue
    for seed in args.seeds:
        label = f"{name}, seed {seed}"
        run_dir = ablations.ablation_dir(name, seed)
        if ablations.train_unless_recorded(label, dataclasses.replace(config, seed=seed), data, run_dir,
                                           free_variants=name == ablations.FULL_RECIPE) is None:
            failed.append(label)
if failed:
    raise SystemExit(f"{len(failed)} run(s) failed: {'; '.join(failed)}")
