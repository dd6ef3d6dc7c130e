"""The conformance reference network saved in each torch format (built once per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def torch_reference_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"torchscript", "pt2-dynamic", "pt2-static1", "state-dict"}`` → file of the reference network."""
    import torch

    from im_core.testing import reference_torch_module

    root = tmp_path_factory.mktemp("torch-reference")
    module = reference_torch_module()
    example = torch.zeros(2, 3, 8, 8)
    files = {
        "torchscript": root / "weights.torchscript",
        "pt2-dynamic": root / "dynamic.pt2",
        "pt2-static1": root / "static1.pt2",
        "state-dict": root / "weights.pt",
    }
    torch.jit.trace(module, example).save(str(files["torchscript"]), _extra_files={"im.json": '{"task": "x"}'})
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(
        torch.export.export(module, (example,), dynamic_shapes={"images": {0: batch}}),
        files["pt2-dynamic"],
        extra_files={"im.json": '{"task": "y"}'},
    )
    torch.export.save(torch.export.export(module, (torch.zeros(1, 3, 8, 8),)), files["pt2-static1"])
    torch.save(module.state_dict(), files["state-dict"])
    return files
