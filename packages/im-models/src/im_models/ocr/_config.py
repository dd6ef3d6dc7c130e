"""Settings of the OCR families: defaults, overridden by the package's ``ocr_config.json``, then by kwargs."""

from __future__ import annotations

from typing import Any

from im_core.errors import CorruptedModelPackageError
from im_models.common import check_params

__all__ = ["settings"]

#: optional JSON object with family settings (thresholds, input sizes), overridden by ``from_pretrained`` kwargs.
SETTINGS_FILE = "ocr_config.json"


def settings(ctx: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated from the package's ``ocr_config.json`` and then from ``ctx.options``.

    Only keys present in ``defaults`` are taken from the file; an unknown keyword in ``ctx.options`` raises.
    """
    out = dict(defaults)
    if ctx.has(SETTINGS_FILE):
        data = ctx.read_json(SETTINGS_FILE)
        if not isinstance(data, dict):
            raise CorruptedModelPackageError(f"{SETTINGS_FILE} of {ctx.model_id!r} must hold a JSON object.")
        out.update({k: v for k, v in data.items() if k in defaults})
    check_params(ctx.options, defaults, f"{ctx.metadata.architecture} ({ctx.model_id})")
    out.update(ctx.options)
    return out
