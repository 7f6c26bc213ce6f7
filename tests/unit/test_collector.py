"""Long-lived objects out of the collector's way (serving/runtime/collector.py): what a process built while starting
is frozen, garbage of that time is collected first, and every executor and the gateway freeze once started."""
from __future__ import annotations

import ast
import gc
import weakref
from pathlib import Path

import pytest

from serving.runtime.collector import freeze_long_lived

REPO_ROOT = Path(__file__).resolve().parents[2]


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_is_kept_is_frozen_and_cycles_of_garbage_are_collected_first(unfrozen):
    kept = Node()
    garbage = Node()
    garbage.other = Node()
    garbage.other.other = garbage  # a cycle: only the cyclic collector frees it
    gone = weakref.ref(garbage)
    del garbage
    frozen_before = gc.get_freeze_count()
    freeze_long_lived()
    assert gone() is None  # collected, not frozen for the process's life
    assert gc.get_freeze_count() > frozen_before
    assert not any(obj is kept for obj in gc.get_objects())  # frozen: no collection walks it any more
    later = Node()
    assert any(obj is later for obj in gc.get_objects())  # objects made afterwards are collected as before


def _calls_in(path: Path, function: str, name: str) -> bool:
    """Whether `function` in `path` calls `name` anywhere in its body (a plain or an attribute call)."""
    tree = ast.parse(path.read_text())
    body = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == function)
    called = (getattr(node.func, "attr", getattr(node.func, "id", None)) for node in ast.walk(body)
              if isinstance(node, ast.Call))
    return name in called


@pytest.mark.parametrize("path", ["img_emb/executor.py", "txt_emb/executor.py", "pods/indexer.py"])
def test_every_executor_says_it_has_started_at_the_end_of_its_init(path):
    tree = ast.parse((REPO_ROOT / path).read_text())
    init = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    last = init.body[-1]
    assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
    assert getattr(last.value.func, "attr", None) == "started"


@pytest.mark.slow
def test_an_executor_that_has_started_froze_its_model(unfrozen):
    from img_emb.executor import ImageEncoder

    frozen_before = gc.get_freeze_count()
    encoder = ImageEncoder(model="offline")
    assert gc.get_freeze_count() > frozen_before
    assert not any(obj is encoder.backend for obj in gc.get_objects())


def test_the_gateway_freezes_once_its_app_is_built_and_the_parent_before_the_fork():
    assert _calls_in(REPO_ROOT / "serving/http/gateway.py", "app", "freeze_long_lived")
    assert _calls_in(REPO_ROOT / "serving/runtime/flows.py", "_started", "freeze_long_lived")
