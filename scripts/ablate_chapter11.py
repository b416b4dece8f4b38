"""Chapter 11's ablation: the recipe at a shorter budget, whole and with one technique removed at a time.

    python scripts/ablate_chapter11.py --seeds 0          # runs what is missing, one log line per epoch

Every run trains for ``fast.ABLATION_EPOCHS`` epochs (the recipe trains for more); the full recipe's run
comes first and also scores weight averaging and the test-time augmentations on its own network. Records
go to results/11/ablation/<technique>/seedS/ (the model files are not kept); the chapter's notebook reads
them with ``fast.ablation_table``. Runs whose record matches the current recipe are skipped, so a stopped
study resumes where it stopped.
"""

import argparse
import dataclasses

from cifar_lessons import fast, results
from cifar_lessons.data import load_cifar10

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seeds", type=int, nargs="+", default=[0])
parser.add_argument("--only", nargs="*", default=None, help="technique names to run (default: all)")
args = parser.parse_args()
data = load_cifar10()
failed = []
for name, config in fast.ablation_configs().items():
    if args.only and name not in args.only:
        continue
    for seed in args.seeds:
        run_config = dataclasses.replace(config, seed=seed)
        run_dir = fast.ablation_dir(name, seed)
        if (run_dir / results.RECORD_FILE).is_file() and results.load_record(run_dir)["config_hash"] == run_config.hash:
            print(f"{name}, seed {seed}: recorded, skipped", flush=True)
            continue
        print(f"{name}, seed {seed}: training for {run_config.epochs} epochs", flush=True)
        try:
            record = fast.train_fast(run_config, data, run_dir, free_variants=name == fast.FULL_RECIPE)
        except Exception as error:  # one failed run must not cost the rest of a long study: report, go on
            failed.append(f"{name}, seed {seed}")
            print(f"{name}, seed {seed}: FAILED ({type(error).__name__}: {error}); run the script again to retry",
                  flush=True)
            continue
        (run_dir / results.MODEL_FILE).unlink(missing_ok=True)
        print(f"{name}, seed {seed}: validation accuracy {record['val_accuracy']:.2%}, "
              f"test accuracy {record['test_accuracy']:.2%}", flush=True)
if failed:
    raise SystemExit(f"{len(failed)} run(s) failed: {'; '.join(failed)}")
