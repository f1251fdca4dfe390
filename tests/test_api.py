"""The public API's verbs and the one elastic-model base both tasks stand on (issue #23).

One verb per kind: ``create_*`` builds from a name, ``load_*`` reads a file, ``pretrained(name)`` loads a
shipped asset of either task; the names from before stay as aliases outside ``__all__``.
"""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

import adaptive_csp as ac
from adaptive_csp.detect.model import Detector
from adaptive_csp.levels import Level
from adaptive_csp.models.elastic import OFF_LADDER, ElasticModel
from adaptive_csp.models.net import ElasticNet
from adaptive_csp.models.pretrained import CheckpointError

ALIASES = {"get_policy": "create_policy", "make_engine": "create_engine", "make_source": "create_source"}


def test_all_has_one_verb_per_kind_and_the_old_names_are_aliases():
    assert not {"get_policy", "make_engine", "make_source", "load_detector", "pretrained_detector",
                "save_detector", "build_policy"} & set(ac.__all__)
    for old, new in ALIASES.items():
        assert getattr(ac, old) is getattr(ac, new)
    for name in ac.__all__:
        getattr(ac, name)  # every public name resolves


def test_create_model_builds_either_task_by_name():
    assert isinstance(ac.create_model("csp_det_tiny"), Detector)
    net = ac.create_model("csp_small", num_classes=3)
    assert isinstance(net, ElasticNet) and net.cfg.num_classes == 3
    assert set(ac.list_models("detect")) <= set(ac.list_models()) and "csp_small" in ac.list_models("classify")
    with pytest.raises(ValueError, match="unknown model"):
        ac.create_model("no_such_model")


def test_pretrained_and_load_model_read_either_task(tmp_path):
    det = ac.pretrained("csp_det_wide_scenes")
    assert isinstance(det, Detector) and det.meta["task"] == "detect"
    assert isinstance(ac.pretrained(), ElasticNet)
    small = ac.create_model("csp_det_tiny").eval()
    ac.save_model(small, tmp_path / "det")
    back = ac.load_model(tmp_path / "det")
    assert isinstance(back, Detector)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(back(x, 0), small(x, 0))
    ac.save_model(ac.create_model("csp_small", num_classes=3), tmp_path / "cls")
    assert isinstance(ac.load_model(tmp_path / "cls"), ElasticNet)
    j = tmp_path / "cls.json"
    doc = json.loads(j.read_text())
    j.write_text(json.dumps({**doc, "task": "segment"}))
    with pytest.raises(CheckpointError, match="unknown task 'segment'"):
        ac.load_model(tmp_path / "cls")


@pytest.mark.parametrize("name", ["levels", "validate", "resolve", "full_level", "cheapest_level", "prepared",
                                  "prepare", "install", "installed", "invalidate", "train", "load_state_dict",
                                  "_apply", "calibrate_bn", "macs", "params"])
def test_both_tasks_share_the_base_and_copy_none_of_it(name):
    for cls in (ElasticNet, Detector):
        assert issubclass(cls, ElasticModel)
        assert name not in vars(cls), f"{cls.__name__} redefines {name}: it belongs to ElasticModel alone"


def test_installed_tells_installed_modules_from_exports():
    det = ac.create_model("csp_det_tiny").eval()
    det.prepare()  # every rung exported into the prepared cache: nothing installed
    assert det.installed() == {}
    twin = det.export(0)
    det.install(0, twin)
    assert det.installed() == {det.levels[0]: twin}
    assert ac.engines.choose_engine(det) == "torch"  # an ONNX export would drop the installed module
    det.train()  # the float weights may change: installed modules are stale
    assert det.installed() == {}


def test_prepared_cache_keeps_ladder_and_installed_levels_and_bounds_the_rest():
    net = ac.create_model("csp_small", num_classes=3).eval()
    full = net.full_level()
    per_stage = [(r, d) for r in net.cfg.ratios for d in (0, 1)]
    odd = [Level(list(combo)) for combo in itertools.product(per_stage, repeat=len(full.stages))]
    odd = [lv for lv in dict.fromkeys(odd) if lv not in set(net.levels)]
    assert len(odd) > OFF_LADDER + 1
    keep = nn.Identity()
    net.install(odd[0], keep)  # an installed off-ladder module is never evicted
    net.prepare()
    for lv in odd[1:]:
        net.prepared(lv)
    cached = list(net._prepared)
    assert set(net.levels) <= set(cached) and odd[0] in cached
    assert len(cached) == len(net.levels) + OFF_LADDER + 1
    assert cached[-OFF_LADDER:] == odd[-OFF_LADDER:]  # the newest off-ladder ones stay (LRU order)
