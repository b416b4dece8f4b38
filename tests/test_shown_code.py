"""The code on the page is the code that trained.

Notebook cells whose first line is ``#@save`` define functions that live, verbatim, in
``cifar_lessons.models`` or ``cifar_lessons.training`` (d2l's one-source convention). These tests
prove that a shown function and the package's are the same code, that everything ``train()`` runs
to build, compile and fit a model is shown in some chapter, and that the package builds exactly the
architecture of every recorded model in ``results/``.
"""

from __future__ import annotations

import ast
import inspect
import re

import nbformat
import numpy as np
import pytest

from cifar_lessons import models, training
from cifar_lessons.book import run_dir_for
from cifar_lessons.chapters import CHAPTERS, training_chapters
from cifar_lessons.results import MODEL_FILE, load_record

SAVE_MARK = "#@save"
PACKAGE_MODULES = {"models": models, "training": training}


def shown_functions() -> dict[str, tuple[str, ast.FunctionDef]]:
    """Every function defined in a ``#@save`` cell: name -> (chapter id, its syntax tree)."""
    shown = {}
    for chapter in CHAPTERS:
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


SHOWN = shown_functions()
PACKAGE = {name: (module_name, node) for module_name, module in PACKAGE_MODULES.items()
           for name, node in package_functions(module).items()}


def test_chapters_show_code():
    assert SHOWN, "no notebook has a #@save cell"


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_shown_function_is_the_package_function(name):
    chapter_id, shown = SHOWN[name]
    assert name in PACKAGE, (f"chapter {chapter_id} shows {name} in a #@save cell, but neither "
                             "cifar_lessons.models nor cifar_lessons.training defines it")
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
    calls = called_names(package_functions(training)["train"])
    assert {"build_model", "compile_model", "fit_model"} <= calls, (
        "train() must build, compile and fit through build_model, compile_model and fit_model, the functions "
        f"the chapters show; it calls {sorted(calls)}")
    assert "chapter_callbacks(config)" in ast.unparse(package_functions(training)["train"])
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


def test_each_training_chapter_trains_with_the_shown_calls():
    """Every training chapter's training cell builds, compiles and fits as train() does: inside a RunRecorder,
    compile_model(build_model(...)), then fit_model with the recorder's callbacks and chapter_callbacks(config).
    Quick-executing the notebook (tests/test_notebooks.py) runs that very cell and checks it writes a record."""
    expected = ["RunRecorder", "build_model", "compile_model", "fit_model", "chapter_callbacks", "finish"]
    for chapter in training_chapters():
        cells = [ast.parse(cell.source) for cell in nbformat.read(chapter.notebook, as_version=4).cells
                 if cell.cell_type == "code" and "RunRecorder(" in cell.source]
        assert len(cells) == 1, f"chapter {chapter.id} needs one training cell that trains inside a RunRecorder"
        with_blocks = [node for node in ast.walk(cells[0]) if isinstance(node, ast.With)]
        assert with_blocks, f"chapter {chapter.id}'s training cell does not open a RunRecorder with `with`"
        calls = [node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                 for node in ast.walk(with_blocks[0]) if isinstance(node, ast.Call)
                 and isinstance(node.func, (ast.Name, ast.Attribute))]
        for name in expected:
            assert name in calls, f"chapter {chapter.id}'s training cell never calls {name}"
    assert SHOWN["fit_model"][0] == "01" and SHOWN["compile_model"][0] == "01"


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


@pytest.fixture(scope="module")
def recorded_models():
    import keras

    loaded = {}
    for chapter in training_chapters():
        run_dir = run_dir_for(chapter)
        path = run_dir / MODEL_FILE
        assert path.is_file(), f"chapter {chapter.id} has no recorded model at {path}"
        loaded[chapter.id] = (keras.models.load_model(path), load_record(run_dir))
    return loaded


def build_as_training_does(chapter, precision, x_train):
    """build_model and compile_model under the run's precision, as train() calls them."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        return training.compile_model(models.build_model(chapter.config, x_train), chapter.config)
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("chapter", training_chapters(), ids=lambda c: c.id)
def test_package_builds_the_recorded_architecture(chapter, recorded_models):
    saved, record = recorded_models[chapter.id]
    assert record["config_hash"] == chapter.config.hash, f"chapter {chapter.id}'s record is stale: retrain it"
    built = build_as_training_does(chapter, record["precision"], np.zeros((10, 32, 32, 3), np.uint8))
    assert architecture(built) == architecture(saved), (
        f"the package no longer builds the model recorded in results/{chapter.id}")
    assert [tuple(w.shape) for w in built.weights] == [tuple(w.shape) for w in saved.weights]
    shown, recorded = built.get_compile_config(), saved.get_compile_config()
    assert (shown["loss"], shown["metrics"]) == (recorded["loss"], recorded["metrics"])
    optimizer, recorded_optimizer = shown["optimizer"], recorded["optimizer"]
    assert optimizer["class_name"] == recorded_optimizer["class_name"]
    # The learning rate in a saved optimizer is the last one used: a schedule (chapter 7) lowers it.
    ignore = {"name", "learning_rate"}
    assert ({k: v for k, v in optimizer["config"].items() if k not in ignore}
            == {k: v for k, v in recorded_optimizer["config"].items() if k not in ignore})
    if not chapter.config.reduce_lr:
        assert recorded_optimizer["config"]["learning_rate"] == pytest.approx(chapter.config.learning_rate)


@pytest.mark.parametrize("chapter", [c for c in training_chapters() if c.config.normalize], ids=lambda c: c.id)
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
