"""`python -m tests.flow_runner index --workspace W --port P [--shards N] [--replicas N]`: one flow until SIGTERM.

The CLI has no command that serves the index flow on its own (`app.py -t index` feeds it and stops); the tests
start it with this script, in a fresh interpreter, and feed it through `serving.jobs.indexing.index_dataset` from
the test process (tests/servers.py says why flows are never forked from the test process itself).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from serving.runtime.flows import FlowSettings, load_flow, serve_until_stopped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["index"])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args()
    settings = FlowSettings(workspace=args.workspace, index_port=args.port, shards=args.shards,
                            replicas=args.replicas)
    serve_until_stopped(load_flow(args.kind, settings))


if __name__ == "__main__":
    main()
