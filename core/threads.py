"""Thread pools that a module's calls share.

Created on first use, forgotten in a forked child (a DataLoader worker inherits the pool
object but none of its threads).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable


class LazyPool:
    """A :class:`ThreadPoolExecutor` of ``workers()`` threads, made by :meth:`get`."""

    def __init__(self, workers: Callable[[], int], prefix: str):
        self._workers, self._prefix = workers, prefix
        self._forget()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self):
        self._pool, self._lock = None, threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        """The pool (created now if this process has none yet)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers(), thread_name_prefix=self._prefix)
        return self._pool
