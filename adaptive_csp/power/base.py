"""The DVFS actuator interface: a frequency as a fraction of f_max, snapped to what the device supports.

Every actuator — simulated, Linux cpufreq, Jetson nvpmodel — answers the same calls:

* ``frequencies``: the supported steps (fractions of f_max, ascending, the last is 1.0);
* ``get()``: the step in force; ``set(f)``: snap ``f`` to the nearest step and apply it, unless the
  actuator's ``cooldown_s`` since its last change has not passed (then nothing changes and ``held`` is
  True) — a slow actuator (``slow = True``, e.g. nvpmodel, which takes seconds) has a long cooldown;
* ``apply(decision_frequency)``: ``set`` for a :class:`~adaptive_csp.control.policy.Decision`'s
  ``frequency`` (None = leave it);
* ``restore()`` puts back what was there when the actuator was opened; ``close()`` restores and
  releases; actuators are context managers.

Real actuators are **opt-in** (``enable=True``): they change machine-wide settings.  Without hardware,
service or permission they refuse at construction with a :class:`DVFSError` subclass that says why and
what to do — never halfway through a run.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from adaptive_csp.control.dvfs import DEFAULT_STEPS, snap

__all__ = ["DVFSError", "DVFSUnavailable", "DVFSPermissionError", "DVFSNotEnabled", "DVFSActuator",
           "DEFAULT_STEPS", "snap"]

class DVFSError(RuntimeError):
    """A DVFS actuator cannot do what was asked."""


class DVFSUnavailable(DVFSError):
    """No such hardware, driver, service or package here."""


class DVFSPermissionError(DVFSError, PermissionError):
    """The settings exist but this process may not change them."""


class DVFSNotEnabled(DVFSError):
    """A real actuator was constructed without the explicit opt-in (``enable=True``)."""


class DVFSActuator(ABC):
    name: str = "dvfs"
    slow: bool = False  # switching takes long enough that policies should not chatter (nvpmodel)

    def __init__(self, cooldown_s: float = 0.0, clock: Callable[[], float] = time.monotonic):
        if cooldown_s < 0:
            raise ValueError("cooldown_s must be >= 0")
        self.cooldown_s = float(cooldown_s)
        self.clock = clock
        self._last_change: float | None = None
        self.held = False  # the last set() was refused by the cooldown
        self.switches = 0

    # --- what subclasses provide ------------------------------------------------------------------------
    _steps: tuple[float, ...] = ()  # set by each actuator's constructor

    @property
    def frequencies(self) -> tuple[float, ...]:
        """Supported steps as fractions of f_max, ascending, ending at 1.0."""
        return self._steps

    @abstractmethod
    def _read(self) -> float:
        """The step in force now."""

    @abstractmethod
    def _write(self, step: float) -> None:
        """Apply one of ``frequencies``."""

    def restore(self) -> None:  # noqa: B027 - optional
        """Put back the settings found when the actuator was opened."""

    # --- common behaviour -------------------------------------------------------------------------------
    def snap(self, f: float | None) -> float:
        return snap(f, self.frequencies)

    def get(self) -> float:
        return self._read()

    def set(self, f: float | None, now: float | None = None) -> float:
        """Snap and apply ``f``; returns the step in force afterwards (the old one while cooling down)."""
        step = self.snap(f)
        cur = self._read()
        if math.isclose(step, cur, abs_tol=1e-9):
            self.held = False
            return cur
        t = self.clock() if now is None else float(now)
        if self._last_change is not None and t - self._last_change < self.cooldown_s:
            self.held = True
            return cur
        self._write(step)
        self._last_change = t
        self.held = False
        self.switches += 1
        return step

    def apply(self, frequency: float | None, now: float | None = None) -> float:
        """Apply a Decision's ``frequency`` (None leaves the current step)."""
        if frequency is None:
            return self._read()
        return self.set(frequency, now)

    def close(self) -> None:
        self.restore()

    def __enter__(self) -> DVFSActuator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(steps={self.frequencies}, cooldown_s={self.cooldown_s:g})"
