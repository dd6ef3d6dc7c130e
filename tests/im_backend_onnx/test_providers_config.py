"""``IM_ONNX_PROVIDERS``: a misspelled provider name is refused naming the variable (issue 12 item 7)."""

import pytest

from im_backend_onnx import select_providers
from im_core.errors import ConfigurationError


def test_a_misspelled_im_onnx_providers_name_is_refused_naming_the_variable(tmp_path):
    known = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider", "RknpuExecutionProvider"]
    common = {"device": "cpu", "available": ["CPUExecutionProvider"], "requested": None, "home": tmp_path}
    with pytest.raises(ConfigurationError) as info:
        select_providers(**common, configured=["CPUExecutionProvder"], known=known)
    assert "IM_ONNX_PROVIDERS" in info.value.message and "(did you mean 'CPUExecutionProvider'?)" in info.value.message
    # a real provider this installation lacks is skipped, so one value serves CPU and GPU machines
    chosen = select_providers(**common, configured=["CUDAExecutionProvider", "CPUExecutionProvider"], known=known)
    assert chosen == ["CPUExecutionProvider"]
