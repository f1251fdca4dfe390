"""Post-training static int8 of one ladder level for the torch engine (torch.ao FX, x86 backend).

Why torch.ao FX: it gives *eager* int8 kernels (fbgemm / oneDNN), so a converted level is an ordinary
module the torch engine runs like any other; PT2E lives in the separate ``torchao`` package and only gets
int8 kernels under ``torch.compile``.

* One converted module per level: int8 convs prepack their weights, so a level cannot be sliced out of
  another level's int8 module.  :func:`quantize_level` lowers the level to a static module (sliced, BN
  folded), fuses Conv+ReLU, observes activations on calibration batches and converts.
* The converted module takes and returns float tensors (quantise / dequantise at the ends).
* :func:`install_int8` builds and installs the int8 modules of the rungs a ladder marks
  ``extra["precision"] = "int8"`` so ``model(x, level)`` runs them.  Which rungs those are is a
  measurement, made by the profilers (:mod:`adaptive_csp.train.int8_profile`).
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Iterable

import torch
from torch import nn

from adaptive_csp.levels import Level, LevelLadder
from adaptive_csp.models.static import static_module

__all__ = ["quantize_static", "quantize_level", "install_int8", "install_module", "module_bytes", "INT8"]

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
    batches = [torch.as_tensor(b).detach().to("cpu", torch.float32) for b in calib]
    return quantize_static(static_module(model, level, float32_cpu=True), batches, backend)


def module_bytes(module: nn.Module) -> int:
    """Serialised size of a module's state (``torch.save`` of its state dict, packed int8 weights included)."""
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.tell()


def install_module(model, level: int | Level, module: nn.Module) -> None:
    """Make ``model(x, level)`` (eval mode) run ``module`` instead of the level's export:
    :meth:`adaptive_csp.models.elastic.ElasticModel.install` (cleared again by training,
    ``load_state_dict`` or a new ladder, since an int8 module is stale once the float weights change)."""
    hook = getattr(model, "install", None)
    if not callable(hook):
        raise ValueError(f"{type(model).__name__} has no install(level, module): int8 modules go into an "
                         "elastic model (ElasticNet, Detector)")
    hook(level, module)


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
