"""Post-training int8 of ladder levels: torch.ao FX modules (:mod:`.int8`, x86 backend, installed into the
model for the torch engine) and static QDQ ONNX models on ONNX Runtime (:mod:`.ort_int8`, run by the
onnxruntime engine).  Transforms only: which rungs go int8 is measured by the profilers
(:mod:`adaptive_csp.train.int8_profile`)."""

from adaptive_csp.quant.int8 import (
    INT8,
    install_int8,
    install_module,
    module_bytes,
    quantize_level,
    quantize_static,
)
from adaptive_csp.quant.ort_int8 import quantize_onnx

__all__ = ["INT8", "install_int8", "install_module", "module_bytes", "quantize_level",
           "quantize_static", "quantize_onnx"]
