"""`python -m crossmodal.backends.check MODEL OPTIONS_JSON`: load a model once and exit, 0 when it loads.

The CLI runs this in a child process before it starts a flow, so that a missing or wrong weights file is one line
(the error, on stderr, exit status 3) rather than an executor's traceback, and so that the CLI's own process, which
forks the flow's executors, never runs torch (a process that has must not fork them: they hang).
"""
from __future__ import annotations

import sys

from crossmodal.backends import BackendUnavailableError, create_backend_from_config


def main(argv: list[str]) -> int:
    model, options = argv
    try:
        create_backend_from_config(model, options)
    except (BackendUnavailableError, ValueError) as error:
        print(error, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
