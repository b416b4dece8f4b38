"""The run identities the current code gives every chapter's recipe, cached in a file (Chapter 1).

Whether a record is stale depends on the identity the current code gives its config: the architecture
it builds, its optimizer, callbacks and augmentation. Computing that means building the model, and
building a model means importing TensorFlow, which costs seconds and prints logs. So the identities
of every chapter's recipe (seeds 0-2, float32 and mixed_bfloat16) are kept in
``results/identities.json``, together with ``source_key()``: a hash of the code that decides an identity
(IDENTITY_MODULES, read as syntax trees, so comments and docstrings do not count).
``cifar-lessons list``, ``report`` and the site build read that file while the source is unchanged,
and build the models themselves when it is not (the answer is the same, only slower).
``cifar-lessons identities`` rewrites the file; a test fails when its identities differ from what the code
builds (an edit that changes no identity only makes the cache unused until the file is rewritten).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from .. import results
from ..going_further.fast_config import FastConfig
from .chapters import training_chapters

IDENTITIES_FILE = results.PACKAGE_DIR.parent / "results" / "identities.json"
SEEDS = (0, 1, 2)
PRECISIONS = ("float32", "mixed_bfloat16")
# The modules whose code decides what a run's identity is: the registry's configs, the models, the training.
IDENTITY_MODULES = ("book/chapters", "config", "devices", "going_further/fast", "going_further/fast_config",
                    "going_further/fast_tta", "models", "training")


def source_key(root: Path = results.PACKAGE_DIR) -> str:
    """Hash of IDENTITY_MODULES' syntax trees without docstrings: an edit elsewhere in the package, to a comment
    or to a docstring leaves it (and the cached identities) unchanged (Chapter 1)."""
    digest = hashlib.sha256()
    for name in IDENTITY_MODULES:
        tree = ast.parse((Path(root) / f"{name}.py").read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                    and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        digest.update(name.encode() + ast.dump(tree).encode())  # ast.dump leaves out line numbers
    return digest.hexdigest()[:16]


def _key(config, precision: str) -> str:
    return f"{type(config).__name__}:{config.hash}:{precision}"


@functools.lru_cache(maxsize=1)
def _cached(path: Path = IDENTITIES_FILE) -> dict:
    """The cached identities, or {} when the file is missing, damaged or made from other source code."""
    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict) or saved.get("source_key") != source_key():
        return {}
    identities = saved.get("identities")
    return identities if isinstance(identities, dict) else {}


def _computed(config, precision: str) -> dict:
    """The identity built from the code itself (imports TensorFlow), without the data fingerprint."""
    if isinstance(config, FastConfig):  # chapter 11's recipe has identities of its own
        from ..going_further.fast import expected_identity  # lazy: imports TensorFlow; list and report stay light
    else:
        from ..training import expected_identity  # lazy: imports TensorFlow; list and report stay light
    identity = expected_identity(config, precision, "")
    identity.pop("data", None)
    return identity


def expected_identity(config, precision: str, data_fingerprint: str) -> dict:
    """The identity the current code gives a run of ``config`` in ``precision`` on that data (Chapter 1)."""
    identity = _cached().get(_key(config, precision)) or _computed(config, precision)
    return {**identity, "data": data_fingerprint}


def recipe_configs() -> list:
    """Every training chapter's config with each seed of the seed study (Chapter 1)."""
    return [dataclasses.replace(chapter.config, seed=seed) for chapter in training_chapters() for seed in SEEDS]


def compute_all() -> dict:
    """The file's content for the current code: every recipe in every precision (imports TensorFlow)."""
    identities = {_key(config, precision): _computed(config, precision)
                  for config in recipe_configs() for precision in PRECISIONS}
    return {"source_key": source_key(), "identities": dict(sorted(identities.items()))}


def write(path: Path = IDENTITIES_FILE) -> dict:
    """Recompute the identities from the code and write them atomically (``cifar-lessons identities``)."""
    content = compute_all()
    results.write_text_atomic(Path(path), json.dumps(content, indent=1, sort_keys=True) + "\n")
    _cached.cache_clear()
    return content
