from __future__ import annotations

import os

import pytest

from adaptive_csp.control.policy import Decision, Policy
from adaptive_csp.levels import LevelLadder

try:  # the bundle runtime's tests run in a venv without torch (tests/test_bundle_runtime.py, CI)
    import torch
except ImportError:
    torch = None
else:
    torch.set_num_threads(int(os.environ.get("ADAPTIVE_CSP_TEST_THREADS", "1")))

#: five rungs with costs and accuracies, shaped like the shipped model's ladder (simulator, baselines, sweeps)
SIM_LADDER = LevelLadder.from_costs([0.30, 0.45, 0.6, 0.75, 0.9], [0.885, 0.900, 0.910, 0.915, 0.918])
#: five rungs by cost only, the full model last (control and preset tests)
CONTROL_LADDER = LevelLadder.from_costs([0.2, 0.35, 0.5, 0.7, 1.0])


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give BN non-trivial affine params and statistics so tests cannot pass by zero-init identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.rand(n, generator=g) * 0.4 - 0.2
            m.running_mean.data = torch.rand(n, generator=g) * 0.2 - 0.1
            m.running_var.data = torch.rand(n, generator=g) + 0.5
    return model


@pytest.fixture
def small_model():
    from adaptive_csp.models import create_model

    torch.manual_seed(0)
    return randomize_bn(create_model("csp_small")).eval()


class Fixed(Policy):
    """Always ``level``; records the level the runtime reported in each call (``seen``)."""

    name = "fixed"

    def __init__(self, level: int = -1):
        self.level = level
        self.seen: list[int] = []

    def decide(self, readings, stats, ladder):
        self.seen.append(stats.level)
        return Decision(ladder.index(self.level), "fixed")
