"""Runtime: :class:`AdaptiveRunner` (frames in, predictions — or a detector's :class:`Detections` — out, level
chosen per call by a policy) and its stages in the order a frame travels: sources and streaming, preprocess
(:class:`Preprocessor`), decide (content-aware demand among it), the engine, heads, results and telemetry
(what a camera loop imports; the demo lives in ``adaptive_csp.apps``)."""

from adaptive_csp.runtime.content import ContentDemand
from adaptive_csp.runtime.decide import DecideOptions
from adaptive_csp.runtime.heads import ClassifyHead, DetectHead, DetectOptions
from adaptive_csp.runtime.preprocess import PreprocessOptions, Preprocessor
from adaptive_csp.runtime.results import Detection, Detections, Prediction
from adaptive_csp.runtime.runner import AdaptiveRunner
from adaptive_csp.runtime.stream import open_source, stream
from adaptive_csp.runtime.telemetry import Telemetry, TelemetryOptions

__all__ = ["AdaptiveRunner", "Prediction", "Detections", "Detection", "Preprocessor", "ContentDemand", "Telemetry",
           "stream", "open_source", "PreprocessOptions", "DecideOptions", "DetectOptions", "TelemetryOptions",
           "ClassifyHead", "DetectHead"]
