"""Hand freed memory back to the operating system between runs.

A training run allocates and frees many large temporary tensors in the worker thread. glibc keeps freed
memory in its per-thread arenas (and raises its mmap threshold after freeing a large block, so later large
blocks come from those arenas too), so without help the app's resident memory grows by steps of tens of MB
over a long session although nothing is kept (50 finished runs: +91 MB; benchmarks/bench_app_memory.py).
``malloc_trim(0)`` returns the free pages of every arena; it takes a few milliseconds. The worker calls it
when a job ends and the GUI once the end of a run is drawn, never inside the training loop.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return freed heap memory to the OS where the C library can (glibc); True if it was asked to."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
