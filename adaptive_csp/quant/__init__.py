"""Post-training int8 quantisation of ladder levels (torch.ao FX, x86 backend); see :mod:`.int8`."""

from adaptive_csp.quant.int8 import (
    INT8,
    install_int8,
    install_module,
    int8_ladder,
    module_bytes,
    quantize_level,
    quantize_static,
)

__all__ = ["INT8", "install_int8", "install_module", "int8_ladder", "module_bytes", "quantize_level",
           "quantize_static"]
