"""Model knowledge lives in the backends' specs: the CLI, the weight download, the index job and the published table
derive from them, no other module names a model, and a model in one new module is usable everywhere."""
from __future__ import annotations

import ast
import json
import sys
import textwrap
from pathlib import Path

import pytest

import crossmodal.backends as registry
from crossmodal.backends import (
    available_backends,
    backend_spec,
    backend_specs,
    published_results,
    shared_options,
    spec_of_model_name,
)
from crossmodal.backends.spec import runtime

REPO_ROOT = Path(__file__).resolve().parents[2]
# Modules that must take every model name from the specs.
MODEL_FREE = [REPO_ROOT / "app.py", REPO_ROOT / "crossmodal" / "download.py",
              REPO_ROOT / "crossmodal" / "evaluation" / "published.py", *sorted((REPO_ROOT / "deploy").rglob("*.py"))]


def string_constants(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant except the module docstring (f-string parts included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstring = tree.body[0].value if tree.body and isinstance(tree.body[0], ast.Expr) else None
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node is not docstring]


@pytest.mark.parametrize("path", MODEL_FREE, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_no_module_outside_the_specs_names_a_model(path):
    names = set(available_backends())
    assert {"offline", "vsepp", "clip"} <= names
    found = [f"{path.name}:{line}: {text!r}" for line, text in string_constants(path)
             if any(name in text.lower() for name in names)]
    assert not found, "model names belong in crossmodal/backends/<model>.py:\n" + "\n".join(found)


def test_the_check_sees_a_model_name(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""Docstring naming vsepp is fine."""\nMODEL = "clip"\nflag = f"--model {MODEL} offline"\n')
    assert [text for _, text in string_constants(sample)] == ["clip", "--model ", " offline"]


def test_flags_and_model_options_are_inverse_for_every_model():
    import app

    for name, spec in backend_specs().items():
        argv = ["-t", "index", "--model", name]
        for option in spec.options:
            value = "2" if option.type is int else "torch" if option.type is runtime else "x"  # a valid runtime
            argv += option.flags(True) if option.is_switch else [option.flag, value]
        options = app.model_options(app.parse_args(argv))
        assert set(options) == {option.name for option in spec.options}, name
        assert ["--model", name, *spec.flags(options)] == argv[2:], name
        with pytest.raises(ValueError, match="not options of the"):
            spec.flags({"no_such_option": 1})


def test_every_flag_of_today_still_parses():
    import app

    args = app.parse_args(["-t", "index", "--model", "vsepp", "--checkpoint", "c.tar", "--vocab", "v.pkl",
                           "--trust-checkpoint", "--threads", "2"])
    assert app.model_options(args) == {"checkpoint": "c.tar", "vocab": "v.pkl", "trust_checkpoint": True,
                                       "threads": 2}
    args = app.parse_args(["-t", "query-restful", "--model", "clip", "--clip-arch", "ViT-L-14"])
    assert app.model_options(args) == {"arch": "ViT-L-14", "pretrained": "openai"}
    assert app.model_options(app.parse_args(["-t", "index"])) == {}
    assert app.parse_args(["-t", "index"]).model == registry.DEFAULT_BACKEND


def test_paths_that_exist_become_absolute(tmp_path, monkeypatch):
    import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"x")
    options = app.model_options(app.parse_args(["-t", "index", "--model", "clip", "--clip-pretrained", "weights.bin"]))
    assert options["pretrained"] == str(tmp_path / "weights.bin")


@pytest.mark.parametrize(("argv", "message"), [
    (["-t", "index", "--model", "vsepp"], "--model vsepp needs --checkpoint and --vocab"),
    (["-t", "index", "--model", "clip", "--checkpoint", "c.tar"], "--model clip takes no --checkpoint"),
    (["-t", "index", "--clip-arch", "ViT-B-32"], "--model offline takes no --clip-arch"),
    (["-t", "download"], "-t download needs -d f8k|f30k"),
    (["-t", "download", "--model", "clip", "--vsepp-run", "r"], "--model clip takes no --vsepp-run"),
])
def test_impossible_model_flags_are_refused(argv, message, capsys):
    import app

    with pytest.raises(SystemExit):
        app.parse_args(argv)
    assert message in capsys.readouterr().err


def test_models_may_share_an_option_only_when_declared_alike():
    flags = [option.flag for option in shared_options()]
    assert len(flags) == len(set(flags)) and "--threads" in flags
    assert {option.flag for option in shared_options(fetch=True)} >= {"--vsepp-url", "--clip-arch"}


def test_published_rows_come_from_the_specs():
    assert [row.model for row in published_results("clip:ViT-B-32:openai")] == ["CLIP ViT-B/32 (OpenAI), zero-shot"]
    assert published_results("clip:ViT-B-32-quickgelu:openai") == published_results("clip:ViT-B-32:openai")
    assert published_results("clip:ViT-B-32:0123456789") == []  # loaded from a file: which weights is unknown
    assert len(published_results("vsepp:model_best.pth.tar:ab:f30k_vocab.pkl:cd")) == 2
    assert published_results("vsepp:model_best.pth.tar:ab:f30k_vocab.pkl:cd", "f8k") == []
    assert published_results("offline") == [] and published_results("unknown:x") == []
    assert spec_of_model_name("vsepp:a:b") is backend_spec("vsepp") and spec_of_model_name("nope") is None


def test_unknown_models_list_the_known_ones():
    with pytest.raises(ValueError, match="unknown model backend 'nope'; available: clip, offline, vsepp"):
        registry.create_backend("nope")


# --- a new model is one new module ----------------------------------------------------------------------------------

TOY_MODEL = '''
"""A model in one module: its spec, its factory and its fetch."""
from pathlib import Path

import numpy as np

from crossmodal.backends.base import ModelBackend, check_towers
from crossmodal.backends.spec import BackendSpec, Option


class Toy(ModelBackend):
    name = "toy"
    dim = 2

    def __init__(self, towers, size=1, weights=None):
        self.towers, self.size = check_towers(towers), size

    def encode_images(self, images):
        self.require_tower("image")
        return np.ones((len(images), 2), dtype=np.float32)

    def encode_texts(self, texts):
        self.require_tower("text")
        return np.ones((len(texts), 2), dtype=np.float32)


def fetch(to: Path, edition: str) -> dict:
    (to / "toy.bin").write_text(edition)
    return {"weights": str(to / "toy.bin")}


SIZE = Option("size", "--toy-size", "toy size", type=int, default=1)
SPEC = BackendSpec(name="toy", summary="a toy", factory=Toy, fetch=fetch,
                   options=(SIZE, Option("weights", "--toy-weights", "toy weights file", path=True)),
                   fetch_options=(Option("edition", "--toy-edition", "which toy", default="first"),))
'''


@pytest.fixture
def toy_model(tmp_path, monkeypatch):
    folder = tmp_path / "models_here"
    folder.mkdir()
    (folder / "toy.py").write_text(textwrap.dedent(TOY_MODEL))
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(folder)])
    registry.backend_specs.cache_clear()
    yield backend_spec("toy")
    registry.backend_specs.cache_clear()
    sys.modules.pop("crossmodal.backends.toy", None)


def test_a_model_in_one_new_module_reaches_every_entry_point(toy_model, tmp_path, capsys):
    import app
    from crossmodal.download import main as download_main
    from deploy import index_job

    args = app.parse_args(["-t", "index", "--model", "toy", "--toy-size", "3"])
    assert app.model_options(args) == {"size": 3}
    assert registry.create_backend_from_config("toy", json.dumps({"size": 3}), towers=("text",)).size == 3

    assert download_main(["weights", "--model", "toy", "--to", str(tmp_path), "--toy-edition", "second"]) == 0
    loaded = json.loads(capsys.readouterr().out)
    assert loaded == {"model": "toy", "model_options": {"weights": str(tmp_path / "toy.bin")}}
    assert (tmp_path / "toy.bin").read_text() == "second"
    assert index_job.model_flags(loaded) == ["--model", "toy", "--toy-weights", str(tmp_path / "toy.bin")]

    assert app.main(["-t", "download", "--model", "toy", "--models-dir", str(tmp_path / "m")]) == 0
    assert f"run with: --model toy --toy-weights {tmp_path / 'm' / 'toy.bin'}" in capsys.readouterr().out
    assert (tmp_path / "m" / "toy.bin").read_text() == "first"


@pytest.mark.parametrize("flag", ["--runtime", "--image-runtime", "--text-runtime"])
def test_a_mistyped_runtime_is_refused_before_any_flow_starts(flag, capsys):
    import app

    with pytest.raises(SystemExit) as stopped:
        app.parse_args(["-t", "index", flag, "int4"])
    assert stopped.value.code == 2
    assert f"argument {flag}: invalid runtime value: 'int4'" in capsys.readouterr().err
