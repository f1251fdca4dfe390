"""--init-backbone: the shipped classifier's weights in the detector's backbone (detect/transfer.py)."""

import pytest
import torch

from adaptive_csp.detect.model import Detector, get_detector_cfg
from adaptive_csp.detect.transfer import init_backbone, reestimate_backbone_bn
from adaptive_csp.levels import Level
from adaptive_csp.models.config import ModelCfg
from adaptive_csp.models.net import ElasticNet
from adaptive_csp.models.pretrained import load_model, shipped_path


@pytest.fixture(scope="module")
def classifier():
    return load_model(shipped_path("csp_wide_fmnist"))


def _reference(clf: ElasticNet, stem_stride: int) -> ElasticNet:
    """The classifier itself, run at the detector's stem stride (a stride has no weights)."""
    cfg = ModelCfg.model_validate({**clf.cfg.model_dump(), "stem": {**clf.cfg.stem.model_dump(), "stride": stem_stride}})
    ref = ElasticNet(cfg, features_only=True)
    ref.load_state_dict(clf.state_dict())
    return ref.eval()


@pytest.mark.parametrize("level", [None, Level([(0.25, 1), (0.125, 0), (0.5, 2)], 1 / 3)])
def test_backbone_features_equal_the_classifiers_on_grey_replicated_input(classifier, level):
    det = Detector(get_detector_cfg("csp_det_wide"))
    init_backbone(det, classifier)
    det.eval()
    ref = _reference(classifier, det.cfg.backbone.stem.stride)
    lv = level or det.backbone.full_level()
    grey = torch.rand(2, 1, 64, 48, generator=torch.Generator().manual_seed(0))
    pre = classifier.meta["preprocess"]
    x1 = (grey - pre["mean"][0]) / pre["std"][0]
    m, s = torch.tensor(det.meta["preprocess"]["mean"]), torch.tensor(det.meta["preprocess"]["std"])
    x3 = (grey.repeat(1, 3, 1, 1) - m.view(1, 3, 1, 1)) / s.view(1, 3, 1, 1)
    with torch.no_grad():
        want = ref._features_sliced(x1, lv)
        got = det.backbone._features_sliced(x3, lv)
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        assert g.shape == w.shape and w.abs().max() > 0
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def test_a_fresh_backbone_differs_and_a_misfit_is_named(classifier):
    det = Detector(get_detector_cfg("csp_det_wide")).eval()
    ref = _reference(classifier, det.cfg.backbone.stem.stride)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(det.backbone._features_sliced(x, det.backbone.full_level())[-1],
                                  ref._features_sliced(x[:, :1], ref.full_level())[-1], atol=1e-3)
    with pytest.raises(ValueError, match="stage|stages"):
        init_backbone(Detector(get_detector_cfg("csp_det")), classifier)


def test_bn_reestimation_replaces_the_classifiers_statistics(classifier):
    det = Detector(get_detector_cfg("csp_det_wide"))
    init_backbone(det, classifier)
    before = det.backbone.stem.bn.running_mean.clone()
    reestimate_backbone_bn(det, [torch.randn(4, 3, 64, 64) * 3 + 1])
    assert not torch.allclose(det.backbone.stem.bn.running_mean, before)
    assert torch.equal(det.backbone.stem.conv.weight, det.backbone.stem.conv.weight)  # weights untouched
