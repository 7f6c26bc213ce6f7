"""Cap glibc's malloc arenas in the flow's processes, so the gateway's memory stops creeping under sustained load.

glibc gives each thread that contends for the heap an arena of its own, up to 8 per core, and memory freed into
one arena is not reused by the others. The gateway decodes photos on FastAPI's thread pool and the encoders run on
Jina's, so under load every process collects arenas whose free space it keeps: resident memory crept upward over
repeated load runs. Two arenas bound that, at a throughput cost within run-to-run noise (docs/reliability.md).
The cap is set with mallopt in the process that starts the flow, before Jina forks the gateway and executors from
it, so they all inherit it (the MALLOC_ARENA_MAX variable would do the same, but glibc reads it only at start-up).
"""
import ctypes
import ctypes.util
import os

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's <malloc.h>


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap this process (and the processes it forks from now on) at ``arenas`` malloc arenas; True when applied.

    Leaves things alone when MALLOC_ARENA_MAX is set (the user's choice, applied by glibc already) and where the C
    library is not glibc (musl, macOS), which has no such arenas.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_ARENA_MAX, int(arenas)) == 1
