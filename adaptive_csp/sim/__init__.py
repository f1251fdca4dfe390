"""Policy simulation: a device model, RC thermal node, battery, scenario traces, and a simulated clock.

The simulator drives the *runtime's own* policy objects (``Policy.decide``) with simulated sensor
readings, so a preset tuned here is the preset that runs on the device.

>>> from adaptive_csp.sim import simulate
>>> r = simulate(policy="battery", scenario="drone")     # doctest: +SKIP
>>> print(r.format())                                     # doctest: +SKIP
"""

from adaptive_csp.sim.battery import Battery
from adaptive_csp.sim.device import DEVICE_CLASSES, DeviceClass, DeviceModel, get_device_class
from adaptive_csp.sim.scenario import Scenario, ScenarioError, list_scenarios, load_scenario
from adaptive_csp.sim.simulate import SimResult, resolve_ladder, simulate
from adaptive_csp.sim.thermal import ThermalModel
from adaptive_csp.sim.world import ScenarioTraces, Tick, World

__all__ = [
    "Battery",
    "DEVICE_CLASSES",
    "DeviceClass",
    "DeviceModel",
    "get_device_class",
    "Scenario",
    "ScenarioError",
    "list_scenarios",
    "load_scenario",
    "SimResult",
    "resolve_ladder",
    "simulate",
    "ThermalModel",
    "ScenarioTraces",
    "Tick",
    "World",
]
