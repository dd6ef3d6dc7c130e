"""im-backend-trt: TensorRT engine sessions for im (TensorRT 10/11, full or lean runtime, cuda-python).

Importing this package imports neither TensorRT nor cuda-python; the backend does when probing or loading, and
checks for a GPU with cuda-python before it touches TensorRT.
"""

from __future__ import annotations

from im_backend_trt._backend import LOAD_OPTIONS, TrtBackend
from im_backend_trt._session import TrtSession

__all__ = ["LOAD_OPTIONS", "TrtBackend", "TrtSession"]
