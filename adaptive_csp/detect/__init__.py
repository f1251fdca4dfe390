"""Detection on the elastic CSP backbone: one set of weights, a ladder of backbone + neck levels.

>>> from adaptive_csp.detect import pretrained_detector                 # doctest: +SKIP
>>> runner = AdaptiveRunner(pretrained_detector(), policy="battery")     # doctest: +SKIP
>>> dets = runner.infer(frame)       # Detections: boxes in frame pixels  # doctest: +SKIP

Here: ``model`` (:class:`Detector`: CSP-PAN neck, FCOS head), ``boxes`` (coding, NMS), ``loss``,
``scenes`` (synthetic belt scenes), ``metrics`` (COCO mAP), ``checkpoint``.  Training and profiling live a
floor up, in :mod:`adaptive_csp.train.detect` (``adaptive-csp train-detector``) and
:mod:`adaptive_csp.train.detect_profile` (``adaptive-csp profile-detector``).
"""

from adaptive_csp.detect.checkpoint import load_detector, pretrained_detector, save_detector
from adaptive_csp.detect.model import DetCfg, Detector, get_detector_cfg

__all__ = ["Detector", "DetCfg", "get_detector_cfg", "load_detector", "save_detector", "pretrained_detector"]
