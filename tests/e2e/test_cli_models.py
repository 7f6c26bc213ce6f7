"""`app.py -t index/query --model vsepp|clip` end to end, on weights files written in the original formats."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crossmodal.store import stored_settings
from tests.model_weights import write_model_weights

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULT_LINE = re.compile(r"^\s*\d+\.\s+(-?\d+\.\d+)\s+\[(image|text)\]\s+(.*)$", re.MULTILINE)


def app(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, "JINA_OPTOUT_TELEMETRY": "1"})


@pytest.fixture(scope="module")
def model_flags(tmp_path_factory):
    options = write_model_weights(tmp_path_factory.mktemp("weights"))
    return {
        "vsepp": ["--model", "vsepp", "--checkpoint", options["vsepp"]["checkpoint"],
                  "--vocab", options["vsepp"]["vocab"]],
        "clip": ["--model", "clip", "--clip-arch", "ViT-B-32", "--clip-pretrained", options["clip"]["pretrained"]],
    }


@pytest.mark.parametrize("model", ["vsepp", "clip"])
def test_index_then_query_with_the_model(model, model_flags, tmp_path):
    flags = [*model_flags[model], "--workspace", str(tmp_path)]
    indexed = app("-t", "index", "-d", "demo", "-n", "2", *flags)
    assert indexed.returncode == 0, indexed.stderr[-3000:]
    assert "indexed 2 images and 6 captions" in indexed.stdout
    assert stored_settings(tmp_path / "image_index").model_name.startswith(f"{model}:")
    by_text = app("-t", "query", "--text", "a cup of coffee", "--limit", "2", *flags)
    assert by_text.returncode == 0, by_text.stderr[-3000:]
    assert [kind for _, kind, _ in RESULT_LINE.findall(by_text.stdout)] == ["image", "image"]
    photo = next((tmp_path / "demo_images").iterdir())
    by_image = app("-t", "query", "--image", str(photo), "--limit", "3", *flags)
    assert by_image.returncode == 0, by_image.stderr[-3000:]
    assert [kind for _, kind, _ in RESULT_LINE.findall(by_image.stdout)] == ["text"] * 3


def test_missing_clip_weights_are_one_actionable_line(tmp_path):
    result = app("-t", "index", "-d", "demo", "-n", "1", "--model", "clip", "--clip-pretrained",
                 str(tmp_path / "missing.bin"), "--workspace", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "--clip-pretrained" in error_lines[0], result.stderr
