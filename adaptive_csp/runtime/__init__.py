"""Runtime: :class:`AdaptiveRunner` (frames in, predictions out, level chosen per call by a policy),
frame preprocessing, content-aware demand, telemetry, video streaming and the conveyor-belt demo."""

from adaptive_csp.runtime.content import ContentDemand
from adaptive_csp.runtime.preprocess import Preprocessor
from adaptive_csp.runtime.runner import AdaptiveRunner, Prediction
from adaptive_csp.runtime.stream import open_source, stream
from adaptive_csp.runtime.telemetry import Telemetry

__all__ = ["AdaptiveRunner", "Prediction", "Preprocessor", "ContentDemand", "Telemetry", "stream",
           "open_source"]
