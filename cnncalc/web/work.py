"""The playground's computations run in worker processes, off the event loop, each with a
time limit: a heavy request cannot hold up a small one, and one that runs past its limit
is stopped (its worker is replaced) and answered 503."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

WORKERS = max(2, min(4, os.cpu_count() or 2))
TIME_LIMIT = 5.0  # seconds one request may compute


class TooSlow(Exception):
    """The request ran past the time limit; its worker was stopped."""


def _warm(parent: int):
    """Import what every request needs once, when the worker starts; end with the server,
    however it ends."""
    import threading
    import time

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()
    from ..analysis import walk  # noqa: F401
    from ..language import expand  # noqa: F401
    from ..render import draw, table  # noqa: F401


class Pool:
    def __init__(self, workers: int = WORKERS, limit: float = TIME_LIMIT):
        self.workers, self.limit = workers, limit
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: no fork of a threaded server, and no forkserver left behind
            self._pool = ProcessPoolExecutor(self.workers, multiprocessing.get_context("spawn"),
                                             initializer=_warm, initargs=(os.getpid(),))
        return self._pool

    async def run(self, fn, *args):
        """``fn(*args)`` in a worker, at most ``limit`` seconds."""
        future = self._executor().submit(fn, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.limit)
        except asyncio.TimeoutError:
            self.restart()
            raise TooSlow from None
        except BrokenProcessPool:  # another request's overrun stopped this worker too
            self.restart()
            raise TooSlow from None

    def restart(self):
        """Stop every worker (the only way to stop a computation) and start afresh."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)  # they are dead: joined at once

    def close(self):
        self.restart()
