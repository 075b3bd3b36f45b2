"""The process keeps the memory it uses, not what it once used (glibc's allocator, on Linux).

A bot idles most of the day and takes surges: what a surge allocated and freed should go back
to the system rather than stay in the allocator's free lists, and aiosqlite's threads should not
each grow an allocator arena of their own (glibc gives up to eight per core).
"""

from __future__ import annotations

import ctypes
import gc
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # another C library (musl): nothing to tune
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def fewer_arenas() -> None:
    """Cap glibc's allocator arenas; call before threads start."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, ARENAS)


def give_back() -> None:
    """Collect garbage and return the allocator's free pages to the system."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def rss_mb() -> float:
    """The resident set size now, in MB (0 where /proc is not there)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
