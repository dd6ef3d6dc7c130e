"""im-models: model families written once against im_core's Session protocol, for every backend.

Families are found by ``AutoModel`` through the ``im.models`` entry point; they can also be imported from here.
Importing this package is light: a family module (and cv2) is imported only when its class is first used.
"""

from __future__ import annotations

from im_core._lazy import lazy_exports
from im_models._manifest import ENTRIES

# class name -> module, derived from the manifest so the two cannot disagree
_FAMILIES: dict[str, str] = {e.target.split(":")[1]: e.target.split(":")[0] for e in ENTRIES}

__all__ = sorted(_FAMILIES)


__getattr__, __dir__ = lazy_exports(globals(), _FAMILIES)
