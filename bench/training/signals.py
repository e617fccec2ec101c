"""SIGINT (Ctrl-C) and SIGTERM while a run trains: finish the step in progress, save it, stop.

``colorbench train`` and ``colorbench demo`` hold :class:`StopOnSignal` around ``train``, and
so does a local sweep's job (``bench.sweep.job``): the first signal only notes itself; the
trainer asks :meth:`StopOnSignal.requested` after every step, writes ``checkpoint.pt`` for the
step it has just finished and returns its summary with state ``interrupted``.  The command
then prints where it stopped and exits 128 + the signal number (130 for SIGINT, 143 for
SIGTERM), as a shell reports a process killed by that signal.  A second signal stops at once
(:class:`StoppedAtOnce`); the run then continues from its last checkpoint.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StoppedAtOnce(BaseException):
    """A second signal arrived while the first one's stop was still under way.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped at once by {signal.Signals(signum).name}")
        self.signum = signum


class StopOnSignal:
    """Within the ``with`` block, SIGINT and SIGTERM ask the trainer to stop after its current step."""

    def __init__(self, signals: tuple[int, ...] = SIGNALS, announce: bool = True, escalate: bool = True) -> None:
        """``announce``: say so on stderr at the first signal; ``escalate``: raise StoppedAtOnce at the second."""
        self.signals = signals
        self.announce = announce
        self.escalate = escalate
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            self._previous = {signum: signal.signal(signum, self._note) for signum in self.signals}
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _note(self, signum: int, frame: Any) -> None:
        # Runs between two bytecodes of the trainer: note the signal, write with one system call.
        if self.received is not None:
            if self.escalate:
                raise StoppedAtOnce(signum)
            return
        self.received = signum
        if self.announce:
            os.write(2, f"\ncolorbench: {signal.Signals(signum).name}: stopping after the current step "
                        "(signal again to stop at once)\n".encode())

    def requested(self) -> bool:
        """Whether a signal asked the run to stop (the trainer's ``stop_requested``)."""
        return self.received is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 after SIGINT, 143 after SIGTERM (0 when none arrived)."""
        return 128 + self.received if self.received is not None else 0
