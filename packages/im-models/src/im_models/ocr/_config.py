"""Settings of the OCR families: defaults, overridden by the package's ``ocr_config.json``, then by kwargs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from im_core.errors import CorruptedModelPackageError
from im_core.sdk import check_names

__all__ = ["settings"]

#: optional JSON object with family settings (thresholds, input sizes), overridden by ``from_pretrained`` kwargs.
SETTINGS_FILE = "ocr_config.json"


def settings(ctx: Any, defaults: dict[str, Any], renamed: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``defaults`` updated from the package's ``ocr_config.json`` and then from ``ctx.options``.

    Only keys present in ``defaults`` are taken from the file; ``renamed`` maps an older file key to its current
    name (``batch_size`` → ``recognition_batch_size``), read when the file does not use the current name. An unknown
    keyword in ``ctx.options`` raises.
    """
    out = dict(defaults)
    if ctx.has(SETTINGS_FILE):
        data = ctx.read_json(SETTINGS_FILE)
        if not isinstance(data, dict):
            raise CorruptedModelPackageError(f"{SETTINGS_FILE} of {ctx.model_id!r} must hold a JSON object.")
        for old, new in (renamed or {}).items():
            if old in data and new not in data:
                data[new] = data[old]
        out.update({k: v for k, v in data.items() if k in defaults})
    check_names(ctx.options, defaults, f"{ctx.metadata.architecture} ({ctx.model_id}) takes no load option(s)")
    out.update(ctx.options)
    return out
