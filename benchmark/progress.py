"""What a run shows while it trains.

On a terminal: a live progress bar (tqdm) of real steps, with steps/s, ETA, the current phase
(collecting, fitting models, meta steps, ...) and the last evaluation return; it redraws at
least every second, so a long model fit is never silent. Elsewhere (log files, the
workflow): one short line per evaluation point; ``--progress phases`` adds a line at every
change of phase (where a long run spends its time, in a log file). ``--quiet``: nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm

MODES = ("auto", "bar", "lines", "phases", "quiet")


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class ProgressReporter:
    """Progress of one run of ``total`` real steps, resumed at ``initial``."""

    def __init__(
        self,
        label: str,
        total: int,
        initial: int = 0,
        mode: str = "auto",
        stream: TextIO | None = None,
    ) -> None:
        """``mode``: 'bar' (a live bar), 'lines' (a line per evaluation point), 'phases'
        (lines, and a line per change of phase), 'quiet', or 'auto' (a bar on a terminal,
        lines otherwise)."""
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "lines"
        if mode not in MODES:
            raise ValueError(f"unknown progress mode {mode!r}")
        self.mode, self.label, self.total, self.initial = mode, label, total, initial
        self.phase = "starting"
        self.last_return: float | None = None
        self._start = time.monotonic()
        self._bar: tqdm | None = None
        self._steps: Callable[[], int] = lambda: initial
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, steps: Callable[[], int]) -> None:
        """Follow ``steps()`` (the algorithm's real-step count) until :meth:`close`."""
        self._steps = steps
        if self.mode != "bar":
            return
        self._bar = tqdm(
            total=self.total,
            initial=self.initial,
            desc=self.label,
            unit="step",
            file=self.stream,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        self._thread = threading.Thread(target=self._refresh_loop, daemon=True)
        self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(1.0):
            self._refresh()

    def _refresh(self) -> None:
        bar = self._bar
        if bar is None:
            return
        steps = min(self._steps(), self.total)
        if steps > bar.n:
            bar.update(steps - bar.n)
        postfix: dict[str, Any] = {"phase": self.phase}
        if self.last_return is not None:
            postfix["return"] = f"{self.last_return:.1f}"
        bar.set_postfix(postfix, refresh=True)

    def set_phase(self, phase: str) -> None:
        """What the run is doing now (shown on the bar; a line of its own in 'phases')."""
        if self.mode == "phases" and phase != self.phase:
            elapsed = _duration(time.monotonic() - self._start)
            print(f"[{self.label}] {elapsed} {phase}", file=self.stream, flush=True)
        self.phase = phase

    def evaluation(self, env_steps: int, return_mean: float, return_std: float) -> None:
        """An evaluation point was logged."""
        self.last_return = return_mean
        if self.mode == "quiet":
            return
        elapsed = time.monotonic() - self._start
        done = env_steps - self.initial
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - env_steps) / rate if rate > 0 else float("nan")
        line = (
            f"[{self.label}] steps={env_steps}/{self.total} return={return_mean:.2f}"
            f"±{return_std:.2f} elapsed={_duration(elapsed)} {rate:.1f} steps/s"
            + (f" eta={_duration(eta)}" if eta == eta else "")
        )
        if self._bar is not None:
            self._refresh()
            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._refresh()
            self._bar.close()
            self._bar = None
