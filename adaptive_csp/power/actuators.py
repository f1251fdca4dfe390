"""DVFS actuators: simulated, Linux cpufreq (sysfs), NVIDIA Jetson (jtop: nvpmodel + jetson_clocks).

Real ones are opt-in (``enable=True``) and refuse at construction, with a message that says what is
missing: :class:`DVFSNotEnabled` without the opt-in, :class:`DVFSUnavailable` without the hardware,
driver, package or service, :class:`DVFSPermissionError` when the settings exist but are not writable.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from adaptive_csp.power.base import (
    DEFAULT_STEPS,
    DVFSActuator,
    DVFSError,
    DVFSNotEnabled,
    DVFSPermissionError,
    DVFSUnavailable,
)

__all__ = ["SimulatedDVFS", "CpufreqDVFS", "JetsonDVFS", "get_actuator"]

log = logging.getLogger(__name__)


class SimulatedDVFS(DVFSActuator):
    """A frequency knob that only remembers: for the simulator, tests and dry runs.

    ``history`` holds ``(time, step)`` for every change (time from ``now`` or the actuator's clock).
    """

    name = "sim"

    def __init__(self, steps: Sequence[float] = DEFAULT_STEPS, initial: float = 1.0, cooldown_s: float = 0.0,
                 slow: bool = False, clock: Callable[[], float] | None = None):
        kw = {} if clock is None else {"clock": clock}
        super().__init__(cooldown_s, **kw)
        st = tuple(sorted(float(s) for s in steps))
        if not st or st[0] <= 0 or abs(st[-1] - 1.0) > 1e-9:
            raise ValueError("steps must be fractions of f_max in (0, 1] ending at 1.0")
        self._steps = st
        self._f = self.snap(initial)
        self._initial = self._f
        self.slow = bool(slow)
        self.history: list[tuple[float, float]] = []

    def _read(self) -> float:
        return self._f

    def _write(self, step: float) -> None:
        self._f = step

    def set(self, f: float | None, now: float | None = None) -> float:
        before = self.switches
        out = super().set(f, now)
        if self.switches != before:
            self.history.append((float(self._last_change), out))
        return out

    def restore(self) -> None:
        self._f = self._initial


# --- Linux cpufreq ------------------------------------------------------------------------------------------
def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _read_int(path: Path) -> int:
    return int(path.read_text().split()[0])


class CpufreqDVFS(DVFSActuator):
    """Caps the CPU frequency through ``/sys/devices/system/cpu/cpufreq/policy*/scaling_max_freq``.

    The governor stays whatever it is (schedutil, ondemand, ...); the actuator moves its ceiling, so a
    request of 0.5 means "at most half of ``cpuinfo_max_freq``".  Steps are the driver's
    ``scaling_available_frequencies`` where it lists them (acpi-cpufreq), else ``steps`` (fractions)
    clipped to ``cpuinfo_min_freq``.  Opt-in (``enable=True``); writing needs root or write access to
    those files (a udev rule or group permission).  The original ceilings are restored on ``close()``.
    """

    name = "cpufreq"

    def __init__(self, enable: bool = False, cpus: Sequence[int] | None = None,
                 root: str | Path = "/sys/devices/system/cpu", steps: Sequence[float] = DEFAULT_STEPS,
                 cooldown_s: float = 0.05):
        if not enable:
            raise DVFSNotEnabled("CpufreqDVFS changes the machine-wide CPU frequency ceiling; opt in with "
                                 "CpufreqDVFS(enable=True) (needs root or write access to cpufreq sysfs)")
        super().__init__(cooldown_s)
        base = Path(root) / "cpufreq"
        pols = sorted(base.glob("policy*")) if base.is_dir() else []
        if cpus is not None:
            want = {int(c) for c in cpus}
            pols = [p for p in pols if want & self._cpus_of(p)]
        if not pols:
            raise DVFSUnavailable(
                f"no cpufreq policies under {base}: this kernel exposes no CPU frequency scaling here "
                "(virtual machine, container without sysfs, or no cpufreq driver loaded)"
            )
        self.policies = pols
        try:
            self._max_khz = [_read_int(p / "cpuinfo_max_freq") for p in pols]
            self._min_khz = [_read_int(p / "cpuinfo_min_freq") for p in pols]
            self._saved = [_read_int(p / "scaling_max_freq") for p in pols]
        except (OSError, ValueError, IndexError) as e:
            raise DVFSUnavailable(f"cpufreq policy files under {base} are unreadable or incomplete ({e})") from e
        denied = [p / "scaling_max_freq" for p in pols if not _writable(p / "scaling_max_freq")]
        if denied:
            raise DVFSPermissionError(
                f"cannot write {denied[0]} (and {len(denied) - 1} more): CPU frequency control needs root, "
                "or write access granted by a udev rule / group; run as root or leave cpufreq DVFS off "
                f"(uid {os.geteuid() if hasattr(os, 'geteuid') else '?'})"
            )
        avail = pols[0] / "scaling_available_frequencies"
        top = self._max_khz[0]
        st: list[float] = []
        if avail.exists():
            try:
                st = sorted({int(v) / top for v in avail.read_text().split() if int(v) <= top})
            except ValueError:
                st = []
        if not st:
            lo = self._min_khz[0] / top
            st = sorted({max(lo, float(s)) for s in steps} | {1.0})
        if abs(st[-1] - 1.0) > 1e-9:
            st.append(1.0)
        self._steps = tuple(st)

    @staticmethod
    def _cpus_of(policy: Path) -> set[int]:
        f = policy / "affected_cpus"
        try:
            return {int(c) for c in f.read_text().split()}
        except (OSError, ValueError):
            return set()

    def _read(self) -> float:
        return self.snap(_read_int(self.policies[0] / "scaling_max_freq") / self._max_khz[0])

    def _put(self, path: Path, khz: int) -> None:
        try:
            path.write_text(f"{khz}\n")
        except PermissionError as e:
            raise DVFSPermissionError(f"cannot write {path}: needs root or write access ({e})") from e
        except OSError as e:
            if e.errno == errno.EROFS:
                raise DVFSPermissionError(f"cannot write {path}: sysfs is mounted read-only here") from e
            raise DVFSError(f"writing {khz} kHz to {path} failed ({e})") from e

    def _write(self, step: float) -> None:
        for p, top, lo in zip(self.policies, self._max_khz, self._min_khz, strict=True):
            self._put(p / "scaling_max_freq", max(lo, int(round(step * top))))

    def restore(self) -> None:
        for p, khz in zip(self.policies, self._saved, strict=True):
            try:
                self._put(p / "scaling_max_freq", khz)
            except DVFSError as e:  # restoring is best effort; say so
                log.warning("cpufreq: could not restore %s: %s", p, e)


# --- NVIDIA Jetson through jtop ---------------------------------------------------------------------------
class JetsonDVFS(DVFSActuator):
    """Jetson power modes as DVFS steps: ``nvpmodel`` per step, ``jetson_clocks`` at the top step.

    ``modes`` maps a frequency fraction to an nvpmodel mode (id or name), e.g. ``{1.0: "MAXN", 0.5:
    "5W"}``; by default the board's modes in id order (mode 0 — MAXN on most boards — is 1.0, then
    evenly lower), which is an assumption: give the map for your board.  nvpmodel switching takes
    seconds and may restart clocks, so this is a **slow** actuator with a long cooldown (default 30 s).
    Opt-in (``enable=True``); needs jetson-stats (``pip install adaptive-csp[jetson]``, AGPL-3.0) and
    its running ``jtop.service``; the user must be allowed to talk to it (group ``jtop`` or root).
    """

    name = "jetson"
    slow = True

    def __init__(self, enable: bool = False, modes: Mapping[float, int | str] | None = None,
                 jetson_clocks_at_max: bool = True, cooldown_s: float = 30.0, interval_s: float = 0.5,
                 jtop_factory: Callable[..., object] | None = None):
        if not enable:
            raise DVFSNotEnabled("JetsonDVFS switches the board's nvpmodel power mode; opt in with "
                                 "JetsonDVFS(enable=True)")
        super().__init__(cooldown_s)
        if jtop_factory is None:
            try:
                from jtop import jtop as jtop_factory  # lazy: AGPL extra, Jetson only
            except ImportError as e:
                raise DVFSUnavailable("jetson-stats is not installed: pip install 'adaptive-csp[jetson]' "
                                      f"(jetson-stats, AGPL-3.0) on the Jetson ({e})") from e
        try:
            self._j = jtop_factory(interval=max(0.5, float(interval_s)))
            self._j.start()
        except Exception as e:  # noqa: BLE001 - JtopException and friends; say what to do
            kind = type(e).__name__
            if isinstance(e, PermissionError) or "permission" in str(e).lower():
                raise DVFSPermissionError(f"jtop refused ({kind}: {e}); add the user to group 'jtop' or run "
                                          "as root") from e
            raise DVFSUnavailable(f"jtop is not usable here ({kind}: {e}); on a Jetson: "
                                  "sudo systemctl restart jtop.service") from e
        self.jetson_clocks_at_max = bool(jetson_clocks_at_max)
        try:
            nvp = self._j.nvpmodel
            if nvp is None:
                raise DVFSUnavailable("this board exposes no nvpmodel through jtop")
            names = list(getattr(nvp, "models", []) or [])
            self._saved_name = str(nvp)
            self._saved_mode = getattr(nvp, "id", None)
            if self._saved_mode is None:
                self._saved_mode = self._saved_name
            self._saved_clocks = bool(self._j.jetson_clocks)
        except DVFSError:
            self._close_jtop()
            raise
        except Exception as e:  # noqa: BLE001
            self._close_jtop()
            raise DVFSUnavailable(f"cannot read nvpmodel / jetson_clocks through jtop ({e})") from e
        if modes is None:
            if not names:
                self._close_jtop()
                raise DVFSUnavailable("jtop lists no nvpmodel modes; pass modes={fraction: mode}")
            n = len(names)
            modes = {round((n - i) / n, 6): i for i in range(n)}
        self.modes = {float(k): v for k, v in modes.items()}
        if not self.modes or max(self.modes) != 1.0 or min(self.modes) <= 0:
            self._close_jtop()
            raise ValueError("modes must map fractions in (0, 1], including 1.0, to nvpmodel modes")
        self._steps = tuple(sorted(self.modes))
        self._f = self._find_current()

    def _close_jtop(self) -> None:
        try:
            self._j.close()
        except Exception:  # noqa: BLE001
            pass

    def _find_current(self) -> float:
        for f, m in self.modes.items():
            if m == self._saved_mode or str(m) == self._saved_name:
                return f
        return 1.0

    def _read(self) -> float:
        return self._f

    def _write(self, step: float) -> None:
        try:
            if self.jetson_clocks_at_max and step < 1.0 and bool(self._j.jetson_clocks):
                self._j.jetson_clocks = False
            self._j.nvpmodel = self.modes[step]
            if self.jetson_clocks_at_max and step >= 1.0:
                self._j.jetson_clocks = True
        except Exception as e:  # noqa: BLE001
            if isinstance(e, PermissionError) or "permission" in str(e).lower():
                raise DVFSPermissionError(f"jtop refused the power-mode change ({e})") from e
            raise DVFSError(f"switching nvpmodel to {self.modes[step]!r} failed ({e})") from e
        self._f = step

    def restore(self) -> None:
        try:
            self._j.nvpmodel = self._saved_mode
            self._j.jetson_clocks = self._saved_clocks
        except Exception as e:  # noqa: BLE001 - best effort
            log.warning("jetson: could not restore nvpmodel %r / jetson_clocks: %s", self._saved_mode, e)

    def close(self) -> None:
        try:
            self.restore()
        finally:
            self._close_jtop()


def get_actuator(kind: str = "sim", **kw) -> DVFSActuator:
    """``"sim"`` (always works), ``"cpufreq"`` or ``"jetson"`` (opt-in: pass ``enable=True``)."""
    kinds = {"sim": SimulatedDVFS, "simulated": SimulatedDVFS, "cpufreq": CpufreqDVFS, "jetson": JetsonDVFS}
    try:
        cls = kinds[kind]
    except KeyError:
        raise ValueError(f"unknown DVFS actuator {kind!r}; known: sim, cpufreq, jetson") from None
    return cls(**kw)
