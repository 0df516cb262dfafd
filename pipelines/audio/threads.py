"""BLAS thread pools off: the audio models run in worker threads of their own, one
decode or batch each, and parallelism comes from those (``AsrSettings.workers``).

NumPy's OpenBLAS otherwise starts a pool with a thread per core and, after each
matrix product (the mel filterbank of every decode), lets it spin: on 2 cores that
spinning cost more CPU than the decodes themselves (docs/captions.md, "Cost").
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_limiters: list[object] = []


def single_threaded_blas() -> None:
    """Limit the BLAS libraries loaded now to one thread, for the whole process;
    idempotent. llama.cpp, CTranslate2 and torch keep their own settings."""
    with _lock:
        if _limiters:
            return
        from threadpoolctl import threadpool_limits

        _limiters.append(threadpool_limits(limits=1, user_api="blas"))
