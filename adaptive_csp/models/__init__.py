"""Architecture as data (configs, presets) and the elastic network builder."""

from adaptive_csp.models.config import ModelCfg, StageCfg, StemCfg
from adaptive_csp.models.net import ElasticNet, StaticNet, default_ladder
from adaptive_csp.models.registry import get_model_cfg, list_models, register_model_cfg

__all__ = ["ModelCfg", "StageCfg", "StemCfg", "ElasticNet", "StaticNet", "default_ladder", "create_model",
           "get_model_cfg", "list_models", "register_model_cfg"]


def create_model(name: str | ModelCfg, num_classes: int | None = None, in_chans: int | None = None,
                 features_only: bool = False, input_size: tuple[int, int] | None = None) -> ElasticNet:
    """Build an (untrained) elastic network from a preset name or a :class:`ModelCfg`."""
    over = {k: v for k, v in (("num_classes", num_classes), ("in_chans", in_chans),
                              ("input_size", input_size)) if v is not None}
    cfg = name if isinstance(name, ModelCfg) else get_model_cfg(name)
    if over:
        cfg = ModelCfg.model_validate({**cfg.model_dump(), **over})
    return ElasticNet(cfg, features_only=features_only)
