"""Post-training static int8 of one ladder level (x86 backend), and int8 rungs on a ladder.

Which quantisation path, and why
--------------------------------
The issue asks for PT2E (``prepare_pt2e`` / ``convert_pt2e`` with ``X86InductorQuantizer``) or torch.ao FX
where that is what runs.  On the installed torch 2.13 ``torch.ao.quantization.quantize_pt2e`` and
``torch.ao.quantization.quantizer`` are gone (PT2E moved to the separate ``torchao`` package, not a
dependency here), and PT2E only gets int8 kernels under ``torch.compile`` anyway.  ``torch.ao`` FX
(``prepare_fx`` / ``convert_fx``, qconfig mapping ``"x86"``) is still shipped (deprecated) and gives
*eager* int8 kernels (fbgemm / oneDNN), so a converted level is an ordinary callable module the runner
can run like any other.  That is what this module uses.

* One converted module per level: int8 convs prepack their weights, so a level cannot be sliced out of
  another level's int8 module.  :func:`quantize_level` exports the level (sliced, BN folded), fuses
  Conv+ReLU, observes activations on calibration batches (the validation split, per level) and converts.
* The converted module takes and returns float tensors (quantise / dequantise at the ends).
* An int8 rung joins a ladder only where it is Pareto-better on this device (:func:`int8_ladder`): its
  measured latency is lower *and* its accuracy is not lower (within ``acc_tol``).  Such a rung keeps its
  level and carries ``extra["precision"] = "int8"``; :func:`install_int8` builds and installs the int8
  modules of those rungs into a model so ``model(x, level)`` runs them.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from adaptive_csp.levels import Level, LevelLadder, Rung

__all__ = ["quantize_static", "quantize_level", "int8_ladder", "install_int8", "install_module",
           "module_bytes", "INT8"]

INT8 = "int8"




@torch.no_grad()
def quantize_static(net: nn.Module, calib: Iterable[torch.Tensor], backend: str = "x86") -> nn.Module:
    """Post-training static int8 of a float module (FX graph mode; per-channel weights, x86 backend).

    ``calib``: float input batches (already normalised) used to observe activation ranges.  ``net`` is
    not modified (a deep copy is quantised).  Returns the converted module in eval mode.
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    batches = [b for b in calib]
    if not batches:
        raise ValueError("quantize_static needs at least one calibration batch")
    if backend not in torch.backends.quantized.supported_engines:
        raise ValueError(f"quantized backend {backend!r} not available here "
                         f"(supported: {torch.backends.quantized.supported_engines})")
    torch.backends.quantized.engine = backend
    model = copy.deepcopy(net).eval()
    with warnings.catch_warnings():  # torch.ao is documented as deprecated; it is what runs here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=".*deprecat.*")
        prepared = prepare_fx(model, get_default_qconfig_mapping(backend), (batches[0][:1],))
        for xb in batches:
            prepared(xb)
        q = convert_fx(prepared)
    q.eval()
    q.precision = INT8  # type: ignore[attr-defined]  # marker for callers / telemetry
    return q


def quantize_level(model, level: int | Level | None, calib: Iterable[torch.Tensor],
                   backend: str = "x86") -> nn.Module:
    """Export ``level`` of an :class:`~adaptive_csp.models.net.ElasticNet` and quantise it to int8.

    The model may live on any device and dtype: the level is exported as a float32 CPU copy (torch.ao int8
    kernels run on the CPU) and the calibration batches are brought there too.
    """
    from adaptive_csp.engines.export import static_module

    batches = [torch.as_tensor(b).detach().to("cpu", torch.float32) for b in calib]
    return quantize_static(static_module(model, level, float32_cpu=True), batches, backend)


def module_bytes(module: nn.Module) -> int:
    """Serialised size of a module's state (``torch.save`` of its state dict, packed int8 weights included)."""
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.tell()


def install_module(model, level: int | Level, module: nn.Module) -> None:
    """Make ``model(x, level)`` (eval mode) run ``module`` instead of the level's exported StaticNet.

    Uses ``ElasticNet.install`` where the model has it; otherwise writes the model's prepared-module
    cache directly (same effect: cleared again by ``invalidate()``, i.e. by training, ``load_state_dict``
    or a new ladder, since an int8 module is stale once the float weights change).
    """
    hook = getattr(model, "install", None)
    if callable(hook):
        hook(level, module)
        return
    lv = model.resolve(level)
    with model._lock:
        model._prepared[lv] = module


def _calib_for(calib, lv: Level):
    return calib(lv) if callable(calib) else calib


def install_int8(model, calib, ladder: LevelLadder | None = None, backend: str = "x86") -> dict[Level, nn.Module]:
    """Quantise and install every rung of ``ladder`` (default: the model's) marked ``precision = int8``.

    ``calib``: a list of batches, or a callable ``level -> batches`` (per-level calibration).
    Returns the installed modules by level.
    """
    ladder = model.levels if ladder is None else ladder
    out: dict[Level, nn.Module] = {}
    for rung in ladder.rungs:
        if rung.extra.get("precision") == INT8:
            q = quantize_level(model, rung.level, _calib_for(calib, rung.level), backend)
            install_module(model, rung.level, q)
            out[rung.level] = q
    return out


def int8_ladder(fp32: Sequence[Rung], int8: Sequence[Rung | None], acc_tol: float = 0.002,
                min_speedup: float = 1.03, metric: str = "latency_ms") -> LevelLadder:
    """The ladder with each rung's int8 variant where it is Pareto-better on this device.

    ``fp32[i]`` and ``int8[i]`` are the same level measured in float and int8 (``int8[i]`` None where not
    quantised).  The int8 variant replaces the float rung when ``fp32.metric / int8.metric ≥
    min_speedup`` and ``int8.accuracy ≥ fp32.accuracy − acc_tol`` (accuracy on the validation split;
    ``acc_tol`` absorbs the noise of a few images).  Afterwards rungs that a joined int8 rung dominates
    (it is cheaper *and* at least as accurate) are dropped, except the full (last) level; the order of
    the remaining rungs is kept.  Without any int8 rung joining, the ladder is returned unchanged.
    Replaced rungs carry ``extra["precision"] = "int8"``, ``extra["fp32_latency_ms"]`` and
    ``extra["fp32_accuracy"]``.
    """
    if len(fp32) != len(int8):
        raise ValueError("fp32 and int8 rung lists must have the same length")
    chosen: list[Rung] = []
    for f, q in zip(fp32, int8, strict=True):
        pick = f
        if q is not None:
            fm, qm = getattr(f, metric), getattr(q, metric)
            if fm is None or qm is None:
                raise ValueError(f"both variants need {metric} measured (level {f.level.key})")
            fa, qa = f.accuracy, q.accuracy
            acc_ok = fa is None or (qa is not None and qa >= fa - acc_tol)
            if qm > 0 and fm / qm >= min_speedup and acc_ok:
                extra = {**q.extra, "precision": INT8, "fp32_latency_ms": f.latency_ms,
                         "fp32_accuracy": f.accuracy}
                pick = Rung(level=f.level, macs=f.macs, params=f.params, latency_ms=q.latency_ms,
                            latency_ms_b32=q.latency_ms_b32, accuracy=q.accuracy, extra=extra)
        chosen.append(pick)
    full = chosen[-1]
    kept: list[Rung] = []

    def dominates(o: Rung, r: Rung) -> bool:  # only an int8 rung that joined can make another obsolete
        if o is r or o.extra.get("precision") != INT8 or o.accuracy is None or r.accuracy is None:
            return False
        om, rm = getattr(o, metric), getattr(r, metric)
        return om <= rm and o.accuracy >= r.accuracy and (om < rm or o.accuracy > r.accuracy)

    for r in chosen[:-1]:
        if not any(dominates(o, r) for o in chosen):
            kept.append(r)
    return LevelLadder([*kept, full])
