"""`app.py -t index/query --model vsepp|clip` end to end, on weights files in the original formats (random values:
the rankings mean nothing, the plumbing is what is tested). The indexed workspaces (tests/conftest.py,
`model_indexes`) are shared with tests/integration/test_model_backends_flow.py, which queries them over HTTP."""
import re

import pytest

from crossmodal.index import stored_settings
from tests.model_weights import DIMENSIONS, MODELS
from tests.servers import describe, run_cli

RESULT_LINE = re.compile(r"^\s*\d+\.\s+(-?\d+\.\d+)\s+\[(image|text)\]\s+(.*)$", re.MULTILINE)


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_index_with_the_model_records_its_name_and_dimension(model, model_indexes):
    index = model_indexes[model]
    assert index.result.returncode == 0, describe(index.result)
    assert f"starting the index flow ({model} model)" in index.result.stderr + index.result.stdout
    assert f"indexed {index.photos} images and {3 * index.photos} captions" in index.result.stdout
    assert "skipped 0" in index.result.stdout
    for modality in ("image_index", "text_index"):
        settings = stored_settings(index.workspace / modality)
        assert settings.model_name.startswith(f"{model}:"), settings
        assert settings.dim == DIMENSIONS[model], settings


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_query_by_text_with_the_model(model, model_indexes):
    index = model_indexes[model]
    result = run_cli("-t", "query", "--text", "a cup of coffee", "--limit", "2", "--all-duplicates", *index.flags,
                     "--workspace", index.workspace)
    assert result.returncode == 0, describe(result)
    lines = RESULT_LINE.findall(result.stdout)
    assert [kind for _, kind, _ in lines] == ["image", "image"], result.stdout
    scores = [float(score) for score, _, _ in lines]
    assert scores == sorted(scores, reverse=True) and all(-1.001 <= score <= 1.001 for score in scores)


def test_missing_clip_weights_are_one_actionable_line(tmp_path):
    result = run_cli("-t", "index", "-d", "demo", "-n", "1", "--model", "clip", "--clip-pretrained",
                     tmp_path / "missing.bin", "--workspace", tmp_path)
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "--clip-pretrained" in error_lines[0], result.stderr
