"""The fold compiled by mypyc (`make compile`) folds a history exactly as its Python source does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import shared.fold
from shared.snapshot import encode_fold
from tests.benchmarks.history import history
from tests.support.folds import fold_of

SOURCE = Path(shared.__file__).with_name("fold.py")


@pytest.mark.skipif(Path(shared.fold.__file__) == SOURCE, reason="the fold is not compiled (make compile)")
def test_the_compiled_fold_keeps_the_same_state_as_its_source() -> None:
    spec = importlib.util.spec_from_file_location("fold_source", SOURCE)
    source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(source)
    events = history(20_000, 300)  # few customers: late sales re-attribute retention events often
    compiled, plain = (encode_fold(fold_of(events, module.Fold())) for module in (shared.fold, source))
    assert compiled["records"], "the history folded into nothing"
    assert compiled == plain
