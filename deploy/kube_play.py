#!/usr/bin/env python
"""`podman kube play` of the exported Kubernetes Deployments, as far as one machine allows (issue 23, item 4).

    python deploy/kube_play.py [--k8s k8s] [--volume crossmodal-workspace] [--port 18180]

For each encoder and one shard of each indexer (k8s/<executor>/<name>.yml): its ConfigMap and Deployment, as
exported, with two changes that one machine needs: the container port is published on 127.0.0.1 (a `hostPort`:
podman creates no Services, so nothing else reaches a pod), and the workspace claim is the podman volume
`--volume` (podman maps a persistentVolumeClaim to the volume of that name; `make deploy-up` fills
crossmodal-workspace with the demo's index, which the indexer shard loads read-only). Each pod must answer
`jina ping executor 127.0.0.1:<port>` (Jina's gRPC readiness check, the manifests' own startup probe), then
`podman kube down` removes it. Prints one JSON line per Deployment; exits 1 when any did not answer.

Not run here, because one machine has no cluster: Services and their DNS names (the gateway and the shard heads
find the executors through them), the gateway Deployment (it needs those names), the index Job (podman runs no
Jobs), a ReadWriteMany claim shared across nodes, and a service mesh for replicas > 1 (see deploy/export.py).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ("text_encoder/text-encoder.yml", "image_encoder/image-encoder.yml",
             "image_indexer/image-indexer-0.yml", "text_indexer/text-indexer-0.yml")


def for_one_machine(documents: list[dict], host_port: int, volume: str) -> tuple[str, list[dict]]:
    """The manifest's ConfigMap and Deployment, the port published on 127.0.0.1:host_port, the claim -> volume."""
    kept = [doc for doc in documents if doc and doc.get("kind") in ("ConfigMap", "Deployment")]
    deployment = next(doc for doc in kept if doc["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    for port in pod["containers"][0]["ports"]:
        port.update(hostPort=host_port, hostIP="127.0.0.1")
    for source in pod.get("volumes", []):
        if "persistentVolumeClaim" in source:
            source["persistentVolumeClaim"]["claimName"] = volume
    return deployment["metadata"]["name"], kept


def ping(port: int, timeout: float) -> float | None:
    """Seconds until `jina ping executor` answers on 127.0.0.1:port, None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        result = subprocess.run([sys.executable, "-m", "jina", "ping", "executor", f"127.0.0.1:{port}",
                                 "--timeout", "3000", "--attempts", "1"], capture_output=True, text=True,
                                timeout=60)
        if result.returncode == 0:
            return round(time.monotonic() - started, 1)
        time.sleep(2)
    return None


def play(manifest: Path, host_port: int, volume: str, engine: str, timeout: float) -> dict:
    name, documents = for_one_machine(list(yaml.safe_load_all(manifest.read_text())), host_port, volume)
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump_all(documents, handle, sort_keys=False)
    path = handle.name
    result: dict = {"deployment": name, "manifest": str(manifest.relative_to(REPO_ROOT)), "port": host_port}
    try:
        played = subprocess.run([engine, "kube", "play", path], capture_output=True, text=True, timeout=300)
        result["kube_play_rc"] = played.returncode
        if played.returncode != 0:
            result["error"] = played.stderr.strip()[-500:]
            return result
        result["ping_s"] = ping(host_port, timeout)
        pods = subprocess.run([engine, "pod", "ps", "--format", "{{.Name}} {{.Status}}"], capture_output=True,
                              text=True).stdout.split("\n")
        result["pods"] = [line for line in pods if line.startswith(name)]
    finally:
        down = subprocess.run([engine, "kube", "down", path], capture_output=True, text=True, timeout=300)
        result["kube_down_rc"] = down.returncode
        Path(path).unlink()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k8s", type=Path, default=REPO_ROOT / "k8s")
    parser.add_argument("--volume", default="crossmodal-workspace", help="the podman volume the claim becomes")
    parser.add_argument("--port", type=int, default=18180, help="first host port (one per Deployment)")
    parser.add_argument("--engine", default="podman")
    parser.add_argument("--timeout", type=float, default=300, help="seconds each pod has to answer jina ping")
    args = parser.parse_args(argv)
    failed = 0
    for number, relative in enumerate(MANIFESTS):
        result = play(args.k8s / relative, args.port + number, args.volume, args.engine, args.timeout)
        print(json.dumps(result), flush=True)
        failed += result.get("ping_s") is None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
