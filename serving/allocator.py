"""Cap glibc's malloc arenas in the flow's processes, so the gateway's memory stops creeping under sustained load.

glibc gives each thread that contends for the heap an arena of its own, up to 8 per core, and memory freed into
one arena is not reused by the others. The gateway decodes photos on FastAPI's thread pool and the encoders run on
Jina's, so under load every process collects arenas whose free space it keeps: resident memory crept upward over
repeated load runs. Two arenas bound that, at a throughput cost within run-to-run noise (README, "Reliability").
glibc reads MALLOC_ARENA_MAX only when a process starts and Jina forks its executors from this process, so the way
to set it for the whole flow is to re-exec once, before anything else happens.
"""
import os
import sys

ARENAS_VARIABLE = "MALLOC_ARENA_MAX"
ARENAS = "2"


def limit_malloc_arenas() -> None:
    """Re-exec this program once with MALLOC_ARENA_MAX=2, unless the variable is set already (the user's choice).

    ``os.execv`` keeps the process id, so a supervisor, a shell's job control and signals see the same process.
    """
    if os.environ.get(ARENAS_VARIABLE):
        return
    os.environ[ARENAS_VARIABLE] = ARENAS
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)
