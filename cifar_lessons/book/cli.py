"""The command line: ``cifar-lessons list|train|evaluate|report|data|book``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback

import numpy as np

from .. import data as data_module
from ..data import DataError
from ..results import RecordError, TrainingError
from . import identities, runs
from .chapters import CHAPTERS, PAGES, REPO_ROOT, UnknownChapterError, get_chapter, training_chapters


def _page_arg(value: str):
    try:
        return get_chapter(value)
    except UnknownChapterError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _chapter_arg(value: str):
    chapter = _page_arg(value)
    if chapter not in CHAPTERS:  # an appendix: a page to read, with nothing to train or evaluate
        ids = ", ".join(c.id for c in CHAPTERS)
        raise argparse.ArgumentTypeError(f"{chapter.label} is a page to read, not a chapter; choose one of {ids}")
    return chapter


def _seed_arg(value: str) -> int:
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"{value!r} is not a seed: use a whole number from 0 to {2**32 - 1}")
    return seed


def _results_arg(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty --results names no folder: give a path, or leave the option out "
                                         "for the repository's results/")
    return value


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


# How far `evaluate` may measure from the record on the same data before it calls the record wrong.
EVALUATE_TOLERANCE = 0.003


def cmd_list(args) -> int:
    width = max(len(chapter.title) for chapter in CHAPTERS)
    print(f"{'id':<3} {'title':<{width}} {'milestone':>9} {'recorded':>9}  status")
    for chapter in CHAPTERS:
        if not chapter.trains:
            print(f"{chapter.id:<3} {chapter.title:<{width}} {'':>9} {'':>9}  analysis of chapter {chapter.uses}")
            continue
        status = runs.chapter_status(chapter, args.results)
        record = status["record"]
        recorded = _percent(record["test_accuracy"]) if record else "-"
        why = f" ({'; '.join(status['reasons'])})" if status["status"] in ("stale", "malformed") else ""
        print(f"{chapter.id:<3} {chapter.title:<{width}} {_percent(chapter.milestone):>9} {recorded:>9}  "
              f"{status['status']}{why}")
    return 0


def cmd_train(args) -> int:
    chapter = args.chapter
    if not chapter.trains:
        print(f"Chapter {chapter.id} trains nothing; it analyses chapter {chapter.uses}.", file=sys.stderr)
        return 2
    if args.control:
        if not getattr(chapter.config, "early_stopping", False):
            print(f"Chapter {chapter.id} adds no early stopping, so it has no control run (try 08).", file=sys.stderr)
            return 2
        run = runs.run_control(chapter.id, seed=args.seed, quick=args.quick, results_dir=args.results)
    else:
        run = runs.run_chapter(chapter.id, quick=args.quick, retrain=True, results_dir=args.results, seed=args.seed)
    record = run.record
    print(f"Chapter {chapter.id}: test accuracy {_percent(record['test_accuracy'])} after "
          f"{record['epochs_run']} epoch{'s' * (record['epochs_run'] != 1)} in {record['wall_time_s'] / 60:.1f} min "
          f"({run.run_dir})")
    return 0


def cmd_evaluate(args) -> int:
    from ..evaluation import evaluate  # lazy: imports scikit-learn; --help, list and report stay light
    from ..training import load_run  # lazy: imports TensorFlow; --help, list and report stay light

    chapter = get_chapter(args.chapter.uses or args.chapter.id)
    data = data_module.load_cifar10()
    status = runs.chapter_status(chapter, args.results, data.fingerprint)
    if status["status"] in ("missing", "malformed"):
        raise RecordError(f"chapter {chapter.id}: {status['message']}")
    run = load_run(runs.run_dir_for(chapter, args.results))
    result = evaluate(run.model, data.x_test, data.y_test, data.class_names)
    recorded = run.record["test_accuracy"]
    print(f"Chapter {chapter.id} on {data.describe()}")
    print(f"  test accuracy {_percent(result.accuracy)} (recorded {_percent(recorded)}"
          f" on {run.record['data']['name']}), loss {result.loss:.4f}")
    same_data = run.record["data"]["fingerprint"] == data.fingerprint
    if status["status"] == "stale":
        print(f"  warning: {status['message']}")
    if not same_data:
        # Neither the record nor the milestone can be checked on other data: say so, and judge nothing.
        print(f"  note: these are not the data the record was made on (fingerprint {data.fingerprint}, the "
              f"record's {run.record['data']['fingerprint']}); the measurement is not comparable with the record, "
              "and the milestone is judged only on the record's own data.")
        return 0
    if abs(result.accuracy - recorded) > EVALUATE_TOLERANCE:
        raise RecordError(f"chapter {chapter.id}: measured {_percent(result.accuracy)} on the record's own data, "
                          f"but the record says {_percent(recorded)} (more than {100 * EVALUATE_TOLERANCE:.1f} "
                          "points apart): the record or the model is not the run it claims; retrain the chapter.")
    if chapter.milestone is not None:
        verdict = "meets" if result.accuracy >= chapter.milestone else "MISSES"
        print(f"  {verdict} the milestone {_percent(chapter.milestone)}")
        return 0 if result.accuracy >= chapter.milestone else 1
    return 0


def cmd_report(args) -> int:
    from .report import accuracy_table_markdown, update_readme  # lazy: imports SciPy; --help and list stay light

    print(accuracy_table_markdown(args.results))
    if getattr(args, "update_readme", False):
        unusable = [f"{row['chapter'].id} {row['status']}: {'; '.join(row['reasons']) or row['message']}"
                    for row in runs.recorded_runs(args.results) if row["status"] != "ok"]
        if unusable:
            raise RecordError("README.md not updated: every chapter needs a valid, current record ("
                              + " | ".join(unusable) + ")")
        try:
            changed = update_readme(REPO_ROOT / "README.md", args.results)
        except ValueError as error:
            raise RecordError(f"README.md not updated: {error}") from None
        print(f"\nREADME.md results block {'updated' if changed else 'already current'}.")
    return 0


def cmd_data(args) -> int:
    if args.clear_cache:
        removed = data_module.clear_cache()
        print(f"Removed {len(removed)} cached source{'s' * (len(removed) != 1)} from {data_module.cache_dir()}.")
        return 0
    data = data_module.load_cifar10(args.source)
    print(data.describe())
    for split, labels in (("train", data.y_train), ("test", data.y_test)):
        counts = np.bincount(labels, minlength=10)
        print(f"  {split}: " + ", ".join(f"{n} {c}" for c, n in zip(data.class_names, counts)))
    duplicates = data.source.get("duplicates")
    print("  exact duplicates: " + (f"{duplicates['train']} extra in train, {duplicates['test']} in test, "
                                    f"{duplicates['test_in_train']} test images also in train" if duplicates
                                    else "none"))
    for note in data.source.get("notes", []):
        print(f"  note: {note}")
    return 0


def cmd_book(args) -> int:
    data = data_module.load_cifar10()
    print(f"Running the book on {data.describe()}", flush=True)
    for chapter in training_chapters():
        run = runs.run_chapter(chapter.id, results_dir=args.results, data=data, other_data="train")
        print(f"Chapter {chapter.id} {chapter.title}: test accuracy {_percent(run.record['test_accuracy'])}",
              flush=True)
    return cmd_report(args)


def cmd_study(args) -> int:
    from .report import chapter_gain  # lazy: imports SciPy; --help and list stay light
    from .seeds import seed_run_status  # lazy: imports SciPy; --help and list stay light

    chapters = list(dict.fromkeys(args.chapters or training_chapters()))
    for chapter in chapters:
        if not chapter.trains:
            print(f"Chapter {chapter.id} trains nothing; it analyses chapter {chapter.uses}.", file=sys.stderr)
            return 2
    # Seed by seed, so every chapter gets its second seed (and a verdict) before any gets its third.
    plan = []
    for seed in dict.fromkeys(args.seeds):
        for chapter in chapters:
            own = seed == chapter.config.seed
            status = runs.chapter_status(chapter, args.results) if own else seed_run_status(chapter, seed, args.results)
            main = runs.chapter_status(chapter, args.results)["record"]
            folder = runs.run_dir_for_seed(chapter, seed, args.results)
            plan.append({"chapter": chapter, "seed": seed, "done": status["status"] == "ok",
                         "estimate_s": main["wall_time_s"] if main else None,
                         "resumes": (folder / "checkpoint").is_dir()})
    todo = [item for item in plan if not item["done"]]
    known = [item["estimate_s"] for item in todo if item["estimate_s"] is not None]
    estimate = f", about {sum(known) / 60:.0f} min at the main runs' wall times" if known else ""
    print(f"Seed study: {len(plan)} runs, {len(plan) - len(todo)} recorded, {len(todo)} to train{estimate}.",
          flush=True)
    if args.plan:
        for item in plan:
            state = ("recorded" if item["done"] else
                     "to train (resumes from its checkpoint)" if item["resumes"] else "to train")
            print(f"  chapter {item['chapter'].id} seed {item['seed']}: {state}")
        return 0
    data = data_module.load_cifar10() if todo else None
    for number, item in enumerate(todo, 1):
        chapter, seed = item["chapter"], item["seed"]
        print(f"[{number}/{len(todo)}] chapter {chapter.id} seed {seed}", flush=True)
        run = runs.run_chapter(chapter.id, results_dir=args.results, data=data, seed=seed, other_data="train")
        print(f"Chapter {chapter.id} seed {seed}: test accuracy {_percent(run.record['test_accuracy'])}", flush=True)
    for chapter in chapters:
        print(chapter_gain(chapter.id, args.results))
    return 0


def cmd_notebooks(args) -> int:
    from .notebooks import execute_notebook  # lazy: imports papermill and nbformat (the book extra)

    chapters = args.chapters or list(PAGES)
    for chapter in chapters:
        print(f"Executing {chapter.notebook.name}", flush=True)
        execute_notebook(chapter.notebook, chapter.notebook, results_dir=args.results)
    return 0


def cmd_identities(args) -> int:
    content = identities.write()
    print(f"Wrote {len(content['identities'])} run identities for identity source {content['source_key']} "
          f"to {identities.IDENTITIES_FILE.name}.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per task (Chapter 1)."""
    parser = argparse.ArgumentParser(prog="cifar-lessons", description=__doc__)
    parser.add_argument("--results", default=None, type=_results_arg,
                        help="results folder (default: results/ in the repo)")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="chapters, milestones, recorded accuracy and staleness")
    train = commands.add_parser("train", help="train one chapter from scratch, or resume its interrupted run")
    train.add_argument("chapter", type=_chapter_arg, help="chapter id, e.g. 05")
    train.add_argument("--quick", action="store_true", help="one epoch on a tiny subset (smoke test)")
    train.add_argument("--seed", type=_seed_arg, default=None,
                       help="train with this seed instead of the chapter's (seed study: results/NN/seedS)")
    train.add_argument("--control", action="store_true",
                       help="the early-stopping control: the previous chapter's recipe to this chapter's epoch "
                            "ceiling without the rule (results/NN/control/seedS; chapter 08)")
    evaluate = commands.add_parser("evaluate", help="re-measure a chapter's saved model on the test set")
    evaluate.add_argument("chapter", type=_chapter_arg)
    report = commands.add_parser("report", help="accuracy table across chapters (Markdown)")
    report.add_argument("--update-readme", action="store_true", help="rewrite the README's results block")
    data = commands.add_parser("data", help="load and describe the configured CIFAR-10 source")
    data.add_argument("source", nargs="?", default=None, help="path (default: $CIFAR_LESSONS_DATA or Keras)")
    data.add_argument("--clear-cache", action="store_true",
                      help="delete the decoded copies in the cache ($CIFAR_LESSONS_CACHE) and load nothing")
    commands.add_parser("book", help="every chapter in order: reuse recorded runs, train the rest")
    study = commands.add_parser("study", help="seed study: train each chapter with several seeds (resumable)")
    study.add_argument("--seeds", nargs="+", type=_seed_arg, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    study.add_argument("--chapters", nargs="+", type=_chapter_arg, default=None,
                       help="chapter ids (default: every training chapter)")
    study.add_argument("--plan", action="store_true", help="list the runs, recorded or to train, and stop")
    commands.add_parser("identities", help="recompute results/identities.json after changing the package code")
    notebooks = commands.add_parser("notebooks", help="re-execute chapter notebooks in place (reusing runs)")
    notebooks.add_argument("chapters", nargs="*", type=_page_arg, help="chapter or appendix ids (default: all)")
    return parser


HANDLERS = {"list": cmd_list, "train": cmd_train, "evaluate": cmd_evaluate, "report": cmd_report,
            "data": cmd_data, "book": cmd_book, "notebooks": cmd_notebooks, "study": cmd_study,
            "identities": cmd_identities}


_SIGNALLED: list[int] = []  # the signals that are ending this command


def _stop(signum, frame):
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt  # SIGINT and SIGTERM end a run alike: checkpoints kept, one message


def _interrupted() -> int:
    """One line, and the shell's status for the signal: 130 for Ctrl-C (SIGINT), 143 for SIGTERM."""
    print("interrupted.", file=sys.stderr)  # train() has said what was kept
    return 128 + (_SIGNALLED[-1] if _SIGNALLED else signal.SIGINT)


def run() -> None:
    """The console script and ``python -m cifar_lessons``: :func:`main`, then the exit with its status.

    The process leaves through ``os._exit``, its output flushed: every file it writes is complete by then
    (written atomically), and the interpreter's own shutdown can change the status. CPython remembers a
    KeyboardInterrupt that once passed through an ``exec`` of a string (library imports do that) and ends the
    process by SIGINT at shutdown; after a full disk, h5py's and TensorFlow's teardown can crash (SIGSEGV).
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cifar-lessons`` and ``python -m cifar_lessons`` (Chapter 1).

    Every failure ends in one line on stderr and a non-zero exit; ``--debug`` adds the traceback.
    """
    for stream in (sys.stdout, sys.stderr):  # any terminal encoding: what it cannot show is escaped, not fatal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    previous_handlers = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous_handlers[signum] = signal.signal(signum, _stop)
        except ValueError:  # not the main thread: leave signals alone
            pass
    _SIGNALLED.clear()
    try:
        args = build_parser().parse_args(argv)
        return HANDLERS[args.command](args)
    except KeyboardInterrupt:
        return _interrupted()
    except (DataError, RecordError, TrainingError) as error:
        failure, message = error, str(error)
    except OSError as error:
        failure, message = error, f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    except Exception as error:  # anything unforeseen still ends in one line
        if _SIGNALLED:  # a library caught the KeyboardInterrupt and raised its own error (Keras does)
            return _interrupted()
        failure, message = error, f"unexpected {type(error).__name__}: {error}"
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    if args.debug:
        traceback.print_exception(failure)
    hint = " (run with --debug for the traceback)" if message.startswith("unexpected") and not args.debug else ""
    print(f"error: {' '.join(message.split())}{hint}", file=sys.stderr)
    return 1
