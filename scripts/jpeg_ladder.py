"""Chapter 11's JPEG ladder: the ablation's full recipe trained on the offline copy re-encoded at lower qualities.

    python scripts/jpeg_ladder.py --qualities 50 30 --seeds 0     # runs what is missing, one log line per epoch
    python scripts/jpeg_ladder.py --budget full --qualities 50   # the same rung at the recipe's own budget

The offline copy is JPEG already (quality about 75), and the official images are not here to compare with,
so the cost of JPEG loss cannot be measured directly. This measures its slope instead: each run trains the
ablation's full recipe (``ablations.ablation_configs()[ablations.FULL_RECIPE]``, same budget, same seed) on every
train and test image saved again as JPEG at a lower quality. Its reference point is the ablation's own
full-recipe run on the copy as it is. With ``--budget full`` a run trains the chapter's recipe itself, and
its reference point is the chapter's seed run. Records go to results/11/jpeg/qQ/seedS/ (``--budget full``:
results/11/jpeg/full/qQ/seedS/; model files not kept); their data source names the quality and the PSNR
against the copy.
"""

import argparse
import dataclasses

from cifar_lessons.book import recompress
from cifar_lessons.data import load_cifar10
from cifar_lessons.going_further import ablations

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--qualities", type=int, nargs="+", default=[50, 30])
parser.add_argument("--seeds", type=int, nargs="+", default=[0])
parser.add_argument("--budget", choices=recompress.BUDGETS, default="screen",
                    help="screen: the ablation's short schedule; full: the chapter's recipe")
args = parser.parse_args()
data = load_cifar10()
base = recompress.ladder_config(args.budget)
failed = []
for quality in args.qualities:
    copy = None
    for seed in args.seeds:
        config, run_dir = dataclasses.replace(base, seed=seed), recompress.ladder_dir(quality, seed, budget=args.budget)
        if ablations.current_record(run_dir, config) is None and copy is None:
            copy = recompress.reencoded(data, quality)  # re-encoded once per quality, only when a run needs it
            print(f"quality {quality}: PSNR {copy.source['psnr_vs_source_db']} dB against the copy", flush=True)
        label = f"quality {quality}, seed {seed}, {config.epochs} epochs"
        if ablations.train_unless_recorded(label, config, copy or data, run_dir) is None:
            failed.append(label)
if failed:
    raise SystemExit(f"{len(failed)} run(s) failed: {'; '.join(failed)}")
