"""What a camera user gets from an arm: two accuracies on the belt's items, with item-bootstrap intervals.

Per scored frame (an item resting under the camera) an arm has ``correct`` (its answer named the item's
class) and ``on_time`` (the share of that moment's frames it answered within the deadline, 0..1: a frame
dropped because the level could not keep up, or served after the deadline, answers nothing; a battery that
has emptied answers nothing).

- **right and on time** = ``Σ correct·on_time / frames``: what the user gets; a late or dropped frame
  counts as wrong.
- **right when answered** = ``Σ correct·on_time / Σ on_time``: the model's accuracy on the frames it
  answered in time; late and dropped frames are left out.

Intervals are 95 % item-cluster bootstrap intervals (:mod:`adaptive_csp.util.bootstrap`): frames of one
item are right or wrong together, so items are resampled, not frames.  The difference of two arms is
paired by item (the same items in one draw for both arms).

Each arm's "right when answered" is over the frames *it* answered, so two arms' figures can differ because
they answered different frames (an arm that answers under load answers harder moments too).
:func:`score_both_answered` compares them on the frames both answered in time (weight ``on_time_a ·
on_time_b``): the model's accuracy alone, like for like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptive_csp.util.bootstrap import RESAMPLES, Interval, difference_interval, ratio_interval

__all__ = ["ArmScore", "BothAnswered", "score_arm", "score_difference", "score_both_answered", "FIGURES"]

FIGURES = {"on_time": "right and on time", "answered": "right when answered"}


@dataclass(frozen=True)
class ArmScore:
    frames: int  # scored frames
    items: int  # distinct items among them
    answered: float  # of those frames, how many were answered in time (Σ on_time)
    on_time: Interval  # right and on time
    when_answered: Interval  # right when answered

    def as_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "items": self.items, "answered": self.answered,
                "on_time": vars(self.on_time), "when_answered": vars(self.when_answered)}


def _terms(correct: Any, on_time: Any, scored: Any, items: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(right-in-time, on-time share, item)`` over the scored frames."""
    c, w, s, it = (np.asarray(v) for v in (correct, on_time, scored, items))
    if not (c.shape == w.shape == s.shape == it.shape) or c.ndim != 1:
        raise ValueError(f"correct, on_time, scored and items must be 1-D and of one length, "
                         f"got {c.shape}, {w.shape}, {s.shape}, {it.shape}")
    w = w.astype(float)
    if np.any(~np.isfinite(w)) or np.any((w < 0) | (w > 1)):
        raise ValueError("on_time must be a share in [0, 1] per frame")
    s = s.astype(bool)
    return (c.astype(bool) & s).astype(float)[s] * w[s], w[s], it[s]


def score_arm(correct: Any, on_time: Any, scored: Any, items: Any, *, resamples: int = RESAMPLES,
              seed: int = 0) -> ArmScore:
    """Both figures of one arm, per frame inputs (see the module docstring)."""
    num, w, it = _terms(correct, on_time, scored, items)
    kw = {"resamples": resamples, "seed": seed}
    return ArmScore(int(num.size), int(np.unique(it).size), float(w.sum()),
                    ratio_interval(num, np.ones_like(num), it, **kw), ratio_interval(num, w, it, **kw))


def score_difference(a: tuple[Any, Any], b: tuple[Any, Any], scored: Any, items: Any, *,
                     resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Interval]:
    """Arm ``a`` minus arm ``b`` in both figures, each arm ``(correct, on_time)`` on the same frames."""
    na, wa, it = _terms(*a, scored, items)
    nb, wb, _ = _terms(*b, scored, items)
    if not it.size:
        raise ValueError("no scored frames: nothing to compare")
    kw = {"resamples": resamples, "seed": seed}
    ones = np.ones_like(na)
    return {"on_time": difference_interval((na, ones, it), (nb, ones, it), **kw),
            "answered": difference_interval((na, wa, it), (nb, wb, it), **kw)}


@dataclass(frozen=True)
class BothAnswered:
    frames: float  # scored frames both arms answered in time (Σ on_time_a · on_time_b)
    a: Interval  # arm a right on them
    b: Interval
    difference: Interval  # a − b, paired by item

    def as_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "a": vars(self.a), "b": vars(self.b), "difference": vars(self.difference)}


def score_both_answered(a: tuple[Any, Any], b: tuple[Any, Any], scored: Any, items: Any, *,
                        resamples: int = RESAMPLES, seed: int = 0) -> BothAnswered:
    """Both arms' "right when answered" on the frames both answered in time, and a − b."""
    na, wa, it = _terms(*a, scored, items)
    nb, wb, _ = _terms(*b, scored, items)
    if not it.size:
        raise ValueError("no scored frames: nothing to compare")
    w = wa * wb
    with np.errstate(invalid="ignore", divide="ignore"):  # right·on_time / on_time, per arm, times both weights
        ra, rb = np.where(wa > 0, na / np.where(wa > 0, wa, 1), 0) * w, np.where(wb > 0, nb / np.where(wb > 0, wb, 1), 0) * w
    kw = {"resamples": resamples, "seed": seed}
    return BothAnswered(float(w.sum()), ratio_interval(ra, w, it, **kw), ratio_interval(rb, w, it, **kw),
                        difference_interval((ra, w, it), (rb, w, it), **kw))
