import numpy as np

from adaptive_csp import AdaptiveRunner, pretrained
from adaptive_csp.control.policy import Decision, Policy
from adaptive_csp.power import SimulatedDVFS


class HalfSpeed(Policy):
    name = "half-speed"

    def decide(self, readings, stats, ladder):
        return Decision(level=0, reason="test: low clock", frequency=0.5)


class BrokenActuator(SimulatedDVFS):
    def apply(self, frequency, now=None):
        raise OSError("cpufreq went away")


def test_runner_applies_policy_frequency_through_actuator():
    act = SimulatedDVFS()
    frame = np.zeros((28, 28), np.uint8)
    with AdaptiveRunner(pretrained(), policy=HalfSpeed(), sensors=None, dvfs=act) as r:
        p = r.infer(frame)
        assert p.level == 0
        assert act.get() == 0.5 and r.frequency == 0.5
    assert any(step == 0.5 for _, step in act.history)
    assert act.get() == 1.0  # closing the runner closed the actuator, which restored the starting clock


def test_failing_actuator_never_escapes_infer(caplog):
    frame = np.zeros((28, 28), np.uint8)
    with AdaptiveRunner(pretrained(), policy=HalfSpeed(), sensors=None, dvfs=BrokenActuator()) as r:
        for _ in range(5):
            assert r.infer(frame).level == 0
    assert sum("DVFS actuator failed" in m.getMessage() for m in caplog.records) == 1
