"""Runtime: :class:`AdaptiveRunner` (frames in, predictions — or a detector's :class:`Detections` — out, level
chosen per call by a policy), frame preprocessing, content-aware demand, telemetry and video streaming (what a
camera loop imports; the demo lives in ``adaptive_csp.apps``)."""

from adaptive_csp.runtime.content import ContentDemand
from adaptive_csp.runtime.detections import Detection, Detections
from adaptive_csp.runtime.preprocess import Preprocessor
from adaptive_csp.runtime.runner import AdaptiveRunner, Prediction
from adaptive_csp.runtime.stream import open_source, stream
from adaptive_csp.runtime.telemetry import Telemetry

__all__ = ["AdaptiveRunner", "Prediction", "Detections", "Detection", "Preprocessor", "ContentDemand", "Telemetry",
           "stream", "open_source"]
