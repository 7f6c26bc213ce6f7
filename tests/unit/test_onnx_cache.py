"""The ONNX export cache and its check, on a small tower: one file per weights and export version, written
atomically, a damaged file exported again, a failed check never cached and answered by one warning."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from crossmodal.backends.models import onnx_runtime
from crossmodal.backends.models.onnx_runtime import TowerExport, cache_folder, onnx_tower, weights_key


class Tower(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.net(features)
        return out / out.norm(dim=1, keepdim=True)


def export_spec(label: str = "test-tower") -> TowerExport:
    generator = torch.Generator().manual_seed(1)
    return TowerExport(label=label, input_names=("features",), output_name="embedding",
                       check_inputs=[{"features": torch.randn(size, 8, generator=generator)} for size in (3, 1, 5)])


@pytest.fixture
def exports(monkeypatch):
    """Counts the calls of torch.onnx.export."""
    calls = []
    real = torch.onnx.export

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", counting)
    return calls


def onnx_files(cache_dir):
    return sorted(cache_folder(cache_dir).glob("*.onnx"))


def test_export_matches_and_a_second_load_reuses_the_file(tmp_path, exports):
    tower = onnx_tower(Tower(), export_spec(), tmp_path)
    assert tower is not None and len(exports) == 1
    [path] = onnx_files(tmp_path)
    assert tower.path == path and path.parent == tmp_path / "onnx"
    assert path.name.startswith("test-tower-fp32-") and path.stat().st_mode & 0o777 == 0o644
    assert tower.metadata["crossmodal_key"] == weights_key(Tower())
    features = np.random.default_rng(0).standard_normal((7, 8)).astype(np.float32)
    with torch.no_grad():
        expected = Tower()(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(tower(features=features), expected, atol=1e-5)  # fp32, any kernel
    mtime = path.stat().st_mtime_ns
    again = onnx_tower(Tower(), export_spec(), tmp_path)
    assert again is not None and again.path == path and len(exports) == 1 and path.stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [path.name]  # no temporary file left


def test_the_cache_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSMODAL_CACHE", str(tmp_path / "env-cache"))
    assert onnx_tower(Tower(), export_spec()) is not None
    assert len(onnx_files(tmp_path / "env-cache")) == 1


def test_other_weights_or_another_export_version_give_another_file(tmp_path, exports, monkeypatch):
    onnx_tower(Tower(seed=0), export_spec(), tmp_path)
    onnx_tower(Tower(seed=1), export_spec(), tmp_path)
    assert len(onnx_files(tmp_path)) == 2 and len(exports) == 2
    monkeypatch.setattr(onnx_runtime, "EXPORT_VERSION", onnx_runtime.EXPORT_VERSION + 1)
    onnx_tower(Tower(seed=0), export_spec(), tmp_path)
    assert len(onnx_files(tmp_path)) == 3 and len(exports) == 3


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other key"])
def test_a_damaged_cache_file_is_exported_again(tmp_path, exports, damage):
    onnx_tower(Tower(), export_spec(), tmp_path)
    [path] = onnx_files(tmp_path)
    if damage == "truncated":  # as a copy interrupted half-way would leave it
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not an onnx model" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid model of other weights under this name
        other = onnx_tower(Tower(seed=5), export_spec("other"), tmp_path)
        path.write_bytes(other.path.read_bytes())
        other.path.unlink()
    tower = onnx_tower(Tower(), export_spec(), tmp_path)
    assert tower is not None and tower.path == path
    assert tower.metadata["crossmodal_key"] == weights_key(Tower())
    assert len(exports) == 2 + (damage == "other key")


class Perturbed(Tower):
    """Exports a graph that differs from torch's: the export check must refuse it."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = super().forward(features)
        return out + 0.05 if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() else out


def test_an_export_that_differs_from_torch_falls_back_with_one_warning_and_is_not_cached(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="crossmodal.onnx"):
        assert onnx_tower(Perturbed(), export_spec(), tmp_path) is None
    records = [record for record in caplog.records if record.name == "crossmodal.onnx"]
    assert [record.levelno for record in records] == [logging.WARNING]
    message = records[0].getMessage()
    assert "test-tower ONNX export does not match torch (cosine 0." in message and "< 0.9999" in message
    assert "running it in torch instead" in message
    assert not list(tmp_path.rglob("*.onnx")) and not list(tmp_path.rglob("*.part"))


def test_an_export_that_raises_falls_back_with_one_warning(tmp_path, caplog, monkeypatch):
    def unsupported(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::something' to ONNX opset version 17 is not supported")

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    with caplog.at_level(logging.WARNING, logger="crossmodal.onnx"):
        assert onnx_tower(Tower(), export_spec(), tmp_path) is None
    [record] = [record for record in caplog.records if record.name == "crossmodal.onnx"]
    assert "cannot run test-tower in ONNX Runtime (RuntimeError: Exporting the operator 'aten::something'" in (
        record.getMessage())
    assert not list(tmp_path.rglob("*.onnx"))


def test_int8_is_a_separate_file_checked_with_its_own_tolerance(tmp_path, monkeypatch):
    """Behaviour, not this CPU's numbers (an int8 test tower reaches 0.98-0.99 or more depending on the BLAS kernel):
    the int8 file is checked against MIN_COSINE_INT8 only and the fp32 one against MIN_COSINE only."""
    monkeypatch.setattr(onnx_runtime, "MIN_COSINE_INT8", -1.0)  # any int8 export passes its own check ...
    monkeypatch.setattr(onnx_runtime, "MIN_COSINE", 1.5)  # ... while no fp32 export can pass its one
    assert onnx_tower(Tower(), export_spec(), tmp_path, runtime="onnx") is None
    int8 = onnx_tower(Tower(), export_spec(), tmp_path, runtime="onnx-int8")
    assert int8 is not None and "-int8-" in int8.path.name and int8.metadata["crossmodal_variant"] == "int8"
    assert [path.name for path in onnx_files(tmp_path)] == [int8.path.name]
    monkeypatch.setattr(onnx_runtime, "MIN_COSINE", -1.0)
    fp32 = onnx_tower(Tower(), export_spec(), tmp_path, runtime="onnx")
    assert fp32 is not None and fp32.path != int8.path and fp32.metadata["crossmodal_variant"] == "fp32"
    assert len(onnx_files(tmp_path)) == 2


def test_an_int8_export_that_misses_its_tolerance_falls_back_with_one_warning_and_is_not_cached(tmp_path, caplog,
                                                                                               monkeypatch):
    monkeypatch.setattr(onnx_runtime, "MIN_COSINE_INT8", 1.5)  # above any cosine: the int8 export is refused
    with caplog.at_level(logging.INFO, logger="crossmodal.onnx"):
        assert onnx_tower(Tower(), export_spec(), tmp_path, runtime="onnx-int8") is None
    records = [record for record in caplog.records if record.name == "crossmodal.onnx"]
    assert [record.levelno for record in records] == [logging.WARNING]
    assert "test-tower ONNX export does not match torch (cosine " in records[0].getMessage()
    assert "< 1.5" in records[0].getMessage() and "running it in torch instead" in records[0].getMessage()
    assert not list(tmp_path.rglob("*.onnx")) and not list(tmp_path.rglob("*.part"))
    assert onnx_tower(Tower(), export_spec(), tmp_path, runtime="onnx") is not None  # fp32 keeps its own check


@pytest.mark.parametrize("value, level", [(None, "ORT_ENABLE_ALL"), ("all", "ORT_ENABLE_ALL"),
                                          ("extended", "ORT_ENABLE_EXTENDED"), ("basic", "ORT_ENABLE_BASIC"),
                                          ("disabled", "ORT_DISABLE_ALL"), (" Disabled ", "ORT_DISABLE_ALL")])
def test_graph_optimisations_follow_the_environment_variable(tmp_path, monkeypatch, value, level):
    import onnxruntime as ort

    if value is None:
        monkeypatch.delenv(onnx_runtime.OPTIMIZATION_ENV, raising=False)
    else:
        monkeypatch.setenv(onnx_runtime.OPTIMIZATION_ENV, value)
    expected = getattr(ort.GraphOptimizationLevel, level)
    assert onnx_runtime.optimization_level() == expected
    assert onnx_runtime.session_options().graph_optimization_level == expected
    tower = onnx_tower(Tower(), export_spec(), tmp_path)  # exported, checked and run at that level
    assert tower is not None and tower.session.get_session_options().graph_optimization_level == expected


def test_an_unknown_optimisation_level_is_refused_with_the_accepted_ones(monkeypatch):
    monkeypatch.setenv(onnx_runtime.OPTIMIZATION_ENV, "fast")
    with pytest.raises(ValueError, match="CROSSMODAL_ONNX_OPTIMIZATION='fast': expected one of disabled, basic, "
                                         "extended, all"):
        onnx_runtime.session_options()


def test_threads_come_from_the_option_else_the_cpus_this_process_may_use(tmp_path):
    tower = onnx_tower(Tower(), export_spec(), tmp_path, threads=1)
    assert tower is not None
    assert onnx_runtime.session_options(3).intra_op_num_threads == 3
    assert onnx_runtime.session_options().intra_op_num_threads == onnx_runtime.default_threads() >= 1
    assert onnx_runtime.session_options().inter_op_num_threads == 1
