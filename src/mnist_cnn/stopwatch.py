"""Where a command's time goes, phase by phase, for timings.json: what the user waits for
is the whole command, not only `fit`."""

from __future__ import annotations

import contextlib
import time


class Stopwatch:
    """Wall seconds per named phase; a phase timed twice adds up."""

    def __init__(self):
        self.started_at = time.time()
        self.phases: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    def record(self) -> dict:
        """For timings.json: the phases, and the wall-clock start and end (seconds since the
        epoch), so that a caller who launched the process can tell its start-up apart."""
        return {"started_at": self.started_at, "finished_at": time.time(), "phases": self.phases}
