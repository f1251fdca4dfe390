"""adaptive-csp: one elastic CSP network whose compute is chosen per call by a resource-aware policy.

>>> import adaptive_csp as ac
>>> runner = ac.AdaptiveRunner(ac.pretrained(), policy="battery")   # doctest: +SKIP
>>> pred = runner.infer(frame)                                        # doctest: +SKIP
>>> model = ac.train(out_dir="runs/mine", dataset="my_images/", init="pretrained")  # doctest: +SKIP
"""

from adaptive_csp import train  # the callable package: adaptive_csp.train(cfg, out_dir, dataset)
from adaptive_csp.control import get_policy, register_policy
from adaptive_csp.control.policy import Decision, Policy, RuntimeStats
from adaptive_csp.data.images import ImageSet
from adaptive_csp.detect import Detector, load_detector, pretrained_detector
from adaptive_csp.engines import available_engines, make_engine
from adaptive_csp.levels import Level, LevelLadder, Rung, StageLevel
from adaptive_csp.models import create_model, list_models
from adaptive_csp.models.ladder import ModelLadder
from adaptive_csp.models.pretrained import load_model, pretrained, save_model
from adaptive_csp.runtime import AdaptiveRunner, Detections, Prediction
from adaptive_csp.runtime.model_profile import profile_ladder
from adaptive_csp.sensors import Readings, make_source
from adaptive_csp.sim import simulate

__version__ = "0.1.0"

__all__ = [
    "AdaptiveRunner", "Prediction", "Detections", "create_model", "list_models", "pretrained", "load_model", "save_model",
    "simulate", "get_policy", "register_policy", "Policy", "Decision", "RuntimeStats", "Level", "LevelLadder",
    "Rung", "StageLevel", "Readings", "make_source", "ImageSet", "available_engines", "make_engine", "__version__",
    "Detector", "load_detector", "pretrained_detector", "ModelLadder", "profile_ladder",
    "train",
]
