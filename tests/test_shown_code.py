"""The code on the page is the code that trained.

Notebook cells whose first line is ``#@save`` define functions that live, verbatim, in
``cifar_lessons.models``, ``training``, ``analysis`` or ``ladder`` (d2l's one-source convention). These tests
prove that a shown function and the package's are the same code, that everything ``train()`` runs
to build, compile and fit a model is shown in some chapter, that ``train()`` really runs those
functions and passes ``fit_model`` the callbacks the chapters show, that the shown code, executed,
gives every recorded run's identity, and that the package builds exactly the architecture of every
recorded model in ``results/``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re

import nbformat
import numpy as np
import pytest

from cifar_lessons import analysis, devices, models, training
from cifar_lessons.book import ladder
from cifar_lessons.book.chapters import PAGES, step_chapters
from cifar_lessons.book.runs import run_dir_for
from cifar_lessons.results import MODEL_FILE, load_record

SAVE_MARK = "#@save"
PACKAGE_MODULES = {"models": models, "training": training, "analysis": analysis, "ladder": ladder}


def shown_functions() -> dict[str, tuple[str, ast.FunctionDef]]:
    """Every function defined in a ``#@save`` cell: name -> (chapter id, its syntax tree)."""
    shown = {}
    for chapter in PAGES:
        for cell in nbformat.read(chapter.notebook, as_version=4).cells:
            if cell.cell_type != "code" or not cell.source.startswith(SAVE_MARK):
                continue
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef):
                    assert node.name not in shown, (
                        f"{node.name} is shown in chapter {shown[node.name][0]} and again in chapter {chapter.id}: "
                        "a #@save function is defined once, where it is introduced")
                    shown[node.name] = (chapter.id, node)
    return shown


def package_functions(module) -> dict[str, ast.FunctionDef]:
    """The top-level functions of a package module, as syntax trees."""
    tree = ast.parse(inspect.getsource(module))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def called_names(function: ast.FunctionDef) -> set[str]:
    """Names of the plain functions a function calls (``f(...)``, not ``obj.f(...)``)."""
    return {node.func.id for node in ast.walk(function)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}


def shown_namespace() -> dict:
    """Every ``#@save`` cell of the book executed, in chapter order, into one namespace: the shown code itself."""
    import keras
    from keras import layers

    namespace = {"keras": keras, "layers": layers, "np": np}
    for chapter in PAGES:
        for cell in nbformat.read(chapter.notebook, as_version=4).cells:
            if cell.cell_type == "code" and cell.source.startswith(SAVE_MARK):
                exec(compile(cell.source, f"chapter {chapter.id} #@save cell", "exec"), namespace)
    return namespace


SHOWN = shown_functions()
PACKAGE = {name: (module_name, node) for module_name, module in PACKAGE_MODULES.items()
           for name, node in package_functions(module).items()}


def test_chapters_show_code():
    assert SHOWN, "no notebook has a #@save cell"


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_shown_function_is_the_package_function(name):
    chapter_id, shown = SHOWN[name]
    assert name in PACKAGE, (f"chapter {chapter_id} shows {name} in a #@save cell, but none of the modules "
                             f"{', '.join(sorted(PACKAGE_MODULES))} defines it")
    module_name, packaged = PACKAGE[name]
    assert ast.dump(shown) == ast.dump(packaged), (
        f"chapter {chapter_id}'s {name} differs from cifar_lessons.{module_name}.{name}: copy the one into the "
        "other (the notebook cell and the package must hold the same code)")


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_shown_function_names_its_chapter(name):
    """A docstring saying '(Chapter 5)' sits in chapter 5's notebook, where a reader looks for it."""
    chapter_id, shown = SHOWN[name]
    docstring = ast.get_docstring(shown) or ""
    match = re.search(r"\(Chapters? (\d+)", docstring)
    assert match, f"{name}'s docstring does not say which chapter introduces it"
    assert int(match.group(1)) == int(chapter_id), (
        f"{name}'s docstring names chapter {match.group(1)} but chapter {chapter_id} shows it")


def test_train_builds_compiles_and_fits_with_the_shown_functions():
    functions = package_functions(training)
    body = functions["_train_in"]  # train() holds the run folder's lock and runs its body, _train_in
    assert "_train_in" in called_names(functions["train"])
    # _train_in's calls, and those of the private helpers it hands a part to (_fit_rest runs fit_model)
    calls = called_names(body)
    calls |= {name for helper in calls if helper.startswith("_") and helper in functions
              for name in called_names(functions[helper])}
    assert {"build_model", "compile_model", "fit_model"} <= calls, (
        "train() must build, compile and fit through build_model, compile_model and fit_model, the functions "
        f"the chapters show; it calls {sorted(calls)}")
    assert "chapter_callbacks(config)" in ast.unparse(body)
    fit_source = ast.unparse(PACKAGE["fit_model"][1])
    assert ".fit(" in fit_source and "validation_data=" in fit_source and "callbacks=callbacks" in fit_source
    assert ".compile(" in ast.unparse(PACKAGE["compile_model"][1])


def test_everything_the_training_path_runs_is_shown():
    """From build_model, compile_model, fit_model and chapter_callbacks, every package function they reach is
    in some chapter."""
    reached, frontier = set(), ["build_model", "compile_model", "fit_model", "chapter_callbacks"]
    while frontier:
        name = frontier.pop()
        if name in reached or name not in PACKAGE:
            continue
        reached.add(name)
        frontier.extend(called_names(PACKAGE[name][1]))
    missing = sorted(reached - set(SHOWN))
    assert not missing, f"the training path runs {missing}, which no chapter shows in a #@save cell"
    unshown_models = sorted(set(package_functions(models)) - set(SHOWN))
    assert not unshown_models, f"cifar_lessons.models defines {unshown_models}, which no chapter shows"


def training_cell(chapter) -> ast.If:
    """The ``if RETRAIN or QUICK:`` statement of a chapter's one training cell."""
    cells = [cell.source for cell in nbformat.read(chapter.notebook, as_version=4).cells
             if cell.cell_type == "code" and re.search(r"^if RETRAIN or QUICK:", cell.source, re.M)]
    assert len(cells) == 1, f"chapter {chapter.id} needs one training cell that trains under `if RETRAIN or QUICK:`"
    return next(node for node in ast.parse(cells[0]).body
                if isinstance(node, ast.If) and ast.unparse(node.test) == "RETRAIN or QUICK")


def _calls(statements) -> list[ast.Call]:
    return [node for statement in statements for node in ast.walk(statement)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]


def test_each_training_chapter_trains_with_train():
    """Every training chapter's training cell calls train() with the chapter's config (quick with QUICK) and its
    run folder (results/quick/NN with QUICK) when RETRAIN or QUICK is set, and otherwise reuses the recorded run.
    Quick-executing the notebook (tests/test_notebooks.py) runs that very branch and checks it writes a record."""
    for chapter in step_chapters():
        branch = training_cell(chapter)
        trains = [call for call in _calls(branch.body) if call.func.id == "train"]
        assert len(trains) == 1, f"chapter {chapter.id}'s training cell must call train() under RETRAIN or QUICK"
        arguments = [ast.unparse(argument) for argument in trains[0].args]
        assert arguments[:3] == ["config", "data", "run_dir_for(chapter, RESULTS_DIR, quick=QUICK)"], arguments
        assert {keyword.arg: ast.unparse(keyword.value) for keyword in trains[0].keywords} == {"chapter": "chapter.id"}
        reuses = {call.func.id for call in _calls(branch.orelse)}
        assert "run_chapter" in reuses and "train" not in reuses, (
            f"chapter {chapter.id}'s training cell must reuse the recorded run (run_chapter) unless asked to train")
    assert SHOWN["fit_model"][0] == "01" and SHOWN["compile_model"][0] == "01"


def test_train_runs_the_shown_functions_with_the_shown_callbacks(tmp_path, monkeypatch):
    """train() builds, compiles and fits through the four functions the chapters show (replaced here by the shown
    code itself, executed from the notebooks), passes fit_model exactly the chapter callbacks between its epoch
    log, TerminateOnNaN and the checkpoint (last), and records the identity the package's own code expects."""
    import keras
    from training_support import learnable_dataset

    shown, calls = shown_namespace(), []

    def spy(name):
        def call(*args, **kwargs):
            result = shown[name](*args, **kwargs)
            calls.append((name, args, kwargs, result))
            return result
        return call

    for name in ("build_model", "compile_model", "chapter_callbacks", "fit_model"):
        monkeypatch.setattr(training, name, spy(name))
    config = training.TrainConfig(widths=(8,), dense_units=8, normalize=True, augment=True, epochs=2,
                                  batch_size=50, validation_size=100, reduce_lr=True, early_stopping=True)
    data = learnable_dataset(per_class=20)
    run = training.train(config, data, tmp_path, verbose=0)
    monkeypatch.undo()

    assert [name for name, *_ in calls] == ["build_model", "compile_model", "chapter_callbacks", "fit_model"]
    (_, _, _, built), (_, (compiled, _), _, _), (_, _, _, rules), (_, fit_args, fit_kwargs, _) = calls
    assert compiled is built and fit_args[0] is built and fit_args[1] == config
    passed = fit_kwargs["callbacks"]
    assert [type(callback).__name__ for callback in passed] == [
        "EpochLog", "TimeEstimate", "ReduceLROnPlateau", "EarlyStopping", "TerminateOnNaN", "RunCheckpoint"]
    assert passed[2:4] == rules and all(a is b for a, b in zip(passed[2:4], rules))  # the very objects
    assert isinstance(passed[4], keras.callbacks.TerminateOnNaN) and fit_kwargs["initial_epoch"] == 0
    identity = run.record["identity"]
    assert identity["callbacks"] == training.callback_settings(shown["chapter_callbacks"](config))
    assert identity == training.expected_identity(config, run.record["precision"], data.fingerprint)


# --- The package builds the recorded models -------------------------------------------------------------

IGNORED_KEYS = {"name", "seed", "shared_object_id"}


def comparable(value):
    """A layer config without what differs between two builds of the same architecture (names, seeds)."""
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items() if key not in IGNORED_KEYS}
    if isinstance(value, (list, tuple)):
        return [comparable(item) for item in value]
    return value


def architecture(model) -> list:
    """Layer classes and configs in order (nested blocks flattened), normalization statistics left out."""
    rows = []
    for layer in model.layers:
        config = dict(layer.get_config())
        config.pop("layers", None)  # a Sequential block: its layers follow as their own rows
        config.pop("mean", None)
        config.pop("variance", None)  # compared with the training split in their own test
        rows.append((type(layer).__name__, comparable(config)))
        if hasattr(layer, "layers"):
            rows += architecture(layer)
    return rows


def build_as_training_does(chapter, precision, x_train):
    """build_model and compile_model under the run's precision, as train() calls them."""
    with devices.dtype_policy(precision):
        return training.compile_model(models.build_model(chapter.config, x_train), chapter.config)


@pytest.fixture(scope="module")
def recorded_models():
    """Each chapter's saved model, loaded under its run's precision (Keras gives nested blocks the global policy)."""
    import keras

    loaded = {}
    for chapter in step_chapters():
        run_dir = run_dir_for(chapter)
        path, record = run_dir / MODEL_FILE, load_record(run_dir)
        assert path.is_file(), f"chapter {chapter.id} has no recorded model at {path}"
        with devices.dtype_policy(record["precision"]):
            loaded[chapter.id] = (keras.models.load_model(path), record)
    return loaded


@pytest.mark.parametrize("chapter", step_chapters(), ids=lambda c: c.id)
def test_package_builds_the_recorded_architecture(chapter, recorded_models):
    saved, record = recorded_models[chapter.id]
    assert record["config_hash"] == chapter.config.hash, f"chapter {chapter.id}'s record is stale: retrain it"
    built = build_as_training_does(chapter, record["precision"], np.zeros((10, 32, 32, 3), np.uint8))
    assert architecture(built) == architecture(saved), (
        f"the package no longer builds the model recorded in results/{chapter.id}")
    assert [tuple(w.shape) for w in built.weights] == [tuple(w.shape) for w in saved.weights]
    # Saved models carry no optimizer (train() saves them lean); the record's identity holds what it compiled.
    identity = record["identity"]
    assert training.architecture_hash(saved) == training.architecture_hash(built) == identity["architecture"]
    assert training.optimizer_settings(built.optimizer) == identity["optimizer"]
    assert str(built.loss) == identity["loss"]


def recorded_runs_of_step_chapters() -> list:
    """Every recorded run folder of chapters 1-8, main runs and seed runs, labelled NN or NN/seedS."""
    runs = []
    for chapter in step_chapters():
        for run_dir in [run_dir_for(chapter), *sorted(run_dir_for(chapter).glob("seed*"))]:
            if (run_dir / "record.json").is_file():
                runs.append(pytest.param(run_dir, id=str(run_dir.relative_to(run_dir_for(chapter).parent))))
    return runs


@functools.cache
def _shown():
    return shown_namespace()


@pytest.mark.parametrize("run_dir", recorded_runs_of_step_chapters())
def test_the_shown_code_gives_the_recorded_identity(run_dir):
    """Executed from the notebooks, the shown build_model, compile_model and chapter_callbacks give each recorded
    run's identity (architecture, optimizer, loss, callback settings, augmentation): the code on the page is the
    code that trained it."""
    from cifar_lessons.results import identity_differences

    record, shown = load_record(run_dir), _shown()
    config = training.TrainConfig.from_dict(record["config"])
    with devices.dtype_policy(record["precision"]):
        model = shown["compile_model"](shown["build_model"](config, np.zeros((1, 32, 32, 3), np.uint8)), config)
    identity = training.run_identity(config, model, shown["chapter_callbacks"](config), record["precision"],
                                     record["identity"]["data"])
    assert identity == record["identity"], identity_differences(record["identity"], identity)


@pytest.mark.parametrize("chapter", [c for c in step_chapters() if c.config.normalize], ids=lambda c: c.id)
def test_recorded_normalization_uses_the_training_split(chapter, recorded_models, real_data):
    """The recorded normalizer's statistics are those of the training split train() prepares."""
    if real_data.source.get("fingerprint") != load_record(run_dir_for(chapter))["data"]["fingerprint"]:
        pytest.skip("the configured CIFAR-10 copy is not the one the run was recorded on")
    saved, _ = recorded_models[chapter.id]
    recorded = saved.get_layer("normalize").get_config()
    x_train = training.prepare_data(chapter.config, real_data)["train"][0]
    expected = models.normalization_layer(x_train).get_config()
    np.testing.assert_allclose(recorded["mean"], expected["mean"], rtol=1e-9)
    np.testing.assert_allclose(recorded["variance"], expected["variance"], rtol=1e-9)


def printed_sources() -> list[tuple[str, str, str]]:
    """Every ``show(module.function)`` cell of the book: (page id, the expression, the committed output)."""
    found = []
    for chapter in PAGES:
        for cell in nbformat.read(chapter.notebook, as_version=4).cells:
            match = re.fullmatch(r"show\(([\w.]+)\)", cell.source.strip()) if cell.cell_type == "code" else None
            if match:
                printed = [output["data"]["text/plain"] for output in cell.get("outputs", [])
                           if output.get("output_type") == "execute_result"]
                found.append((chapter.id, match.group(1), printed[0] if printed else ""))
    return found


def test_printed_source_is_the_package_source():
    """A page that prints a function's source (chapter 11's ``show(fast.build_fast_net)``) shows the code as it is
    now: an edit to the function without re-executing the notebook leaves a page showing code that no longer runs."""
    import importlib
    import pkgutil

    import cifar_lessons

    # the page names a module as it imports it (`fast`), wherever it sits in the package (going_further/fast.py)
    modules = {info.name.rpartition(".")[2]: info.name
               for info in pkgutil.walk_packages(cifar_lessons.__path__, "cifar_lessons.") if not info.ispkg}
    cells = printed_sources()
    assert len(cells) >= 10, "chapter 11 and Appendix A print their functions with show()"
    for page, expression, printed in cells:
        module, _, name = expression.rpartition(".")
        source = inspect.getsource(getattr(importlib.import_module(modules[module]), name))
        assert printed.strip() == source.strip(), (
            f"page {page} prints an old {expression}: re-execute its notebook (cifar-lessons notebooks {page})")
