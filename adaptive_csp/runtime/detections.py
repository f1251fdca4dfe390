"""Where the detection names lived before the runner became stages; kept so existing imports work.

:class:`Detections` and :class:`Detection` are results (:mod:`.results`); :class:`DetectionDecoder`,
:func:`to_frame` and :data:`POSTPROCESS_DEFAULTS` are the detect head's (:mod:`.heads`).
"""

from adaptive_csp.runtime.heads import POSTPROCESS_DEFAULTS, DetectionDecoder, to_frame
from adaptive_csp.runtime.results import Detection, Detections, detection_confidence

__all__ = ["Detection", "Detections", "DetectionDecoder", "detection_confidence", "to_frame", "POSTPROCESS_DEFAULTS"]
