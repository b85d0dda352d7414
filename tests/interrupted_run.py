"""`goalcover score` that stops where test_interrupt.py interrupts it: the child's side of the handshake.

Usage: python interrupted_run.py READY_FILE BATCHES ARGS...   (ARGS: those of ``goalcover score``)

The real judge scores, seen through a spy engine. When the judge is asked for batch BATCHES + 1, the first BATCHES
batches are in the pair cache: the child writes READY_FILE and waits there, however fast or slow the machine, until
the test sends its signal.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fake_engine import FakeEngine

import goalcover_hf.engines as engines
from goalcover_hf.cli import main


class StopAfter:
    """The spy's gate: lets ``batches`` calls through, then says so in ``ready`` and holds the next one forever."""

    def __init__(self, ready: Path, batches: int):
        self.ready, self.batches, self.passed = ready, batches, 0

    def wait(self, timeout=None) -> bool:
        if self.passed < self.batches:
            self.passed += 1
            return True
        partial = self.ready.with_name(self.ready.name + ".partial")
        partial.write_text(f"{self.passed} batches stored\n")
        partial.rename(self.ready)  # the test sees the file whole or not at all
        while True:
            time.sleep(3600)


def run(ready: Path, batches: int, argv: list[str]) -> int:
    load, spies = engines.get_engine, {}

    def spied(*args, **kwargs):
        key = (args, tuple(sorted(kwargs.items())))
        if key not in spies:
            spies[key] = FakeEngine(wraps=load(*args, **kwargs), gate=StopAfter(ready, batches))
        return spies[key]

    engines.get_engine = spied
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]))
