"""RF-DETR keypoint detection: DETR boxes + logits, plus (B, Q, C × K, D) keypoints, one slot group per class.

Decoded as the reference does (``post_process_keypoint_detection_results``, inference-models 0.39.6
models/rfdetr/common.py):

* scores ``sigmoid(logits)``; every (query, class) pair is a candidate (``num_select`` = Q × C);
* each pair reads its class's K slots of the query's keypoints: ``x, y`` (normalised to the network input),
  ``findable`` logit (→ sigmoid: the keypoint confidence), ``visible`` logit, then the precision-Cholesky factor
  ``log l11, l21, log l22`` of the keypoint's 2-D Gaussian (D = 8 in the published export; D ≥ 7 is needed for the
  score fusion below, D = 3 heads get no fusion);
* the detection score is fused with the keypoints' predicted spread: ``s · T^-0.2`` with ``T`` the
  findable-weighted mean of ``trace(Σ_k)`` (computed in log space), then ``s / (1 + s)``;
* classes removed by ``class_names_operations`` (the background class of the published models) are dropped, then
  the confidence thresholds, best first, ``max_detections``;
* keypoints are clipped to the image; slots beyond the class's keypoint count (``keypoints_metadata.json``) and
  keypoints whose confidence is below ``key_points_threshold`` (default 0.3, the reference's) get ``(0, 0)`` and
  confidence 0. Default detection confidence 0.4 (the reference's).

Not carried: the per-keypoint pixel covariance the reference attaches for supervision's ellipse annotators.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from im_core import Detections, KeypointDetectionModel, PackageContext
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
from im_models.common import (
    DETECTION_PARAMS,
    Prepared,
    parse_keypoints_metadata,
    resolve_detection_params,
    to_numpy,
    xywh_to_xyxy,
)
from im_models.detr._detection import DETRDetection

__all__ = ["DETRKeypoints", "fused_keypoint_scores"]

DEFAULT_KEYPOINT_THRESHOLD = 0.3
#: the reference's RF-DETR default (0.4): the fused score ``u / (1 + u)`` stays below 0.5 for ``u < 1``, so the
#: 0.5 default of RF-DETR detection in im would drop nearly every pose
DEFAULT_CONFIDENCE = 0.4


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def fused_keypoint_scores(scores: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """float (N,) sigmoid scores and (N, K, D ≥ 7) keypoints of the chosen pairs → the reference's fused score
    ``u / (1 + u)`` with ``u = s · exp(-0.2 · log mean_w trace(Σ))``, ``w`` the findable probabilities."""
    log_l11, l21, log_l22 = kps[..., 4], kps[..., 5], kps[..., 6]
    t1 = -2.0 * log_l11
    t2 = -2.0 * log_l22
    t3 = 2.0 * np.log(np.maximum(np.abs(l21), 1e-12)) + t1 + t2
    log_trace = _logsumexp(np.stack([t1, t2, t3], axis=-1), axis=-1)
    w = 1.0 / (1.0 + np.exp(-kps[..., 2]))
    log_w = np.log(np.maximum(w, 1e-12))
    log_mean = _logsumexp(log_trace + log_w, axis=-1) - _logsumexp(log_w, axis=-1)
    u = scores * np.exp(-0.2 * log_mean)
    return (u / (1.0 + u)).astype(np.float32)


class DETRKeypoints(DETRDetection, KeypointDetectionModel):
    """RF-DETR keypoint detection (``rfdetr`` / ``keypoint-detection``).

    Package: Roboflow layout with ``keypoints_metadata.json`` (keypoint names and skeleton per network class id).
    Call parameters: those of :class:`~im_models.detr._detection.DETRDetection`, plus ``key_points_threshold``.
    """

    task = "keypoint-detection"
    CALL_PARAMS = {"image_size": "pre", "key_points_threshold": "post", **dict.fromkeys(DETECTION_PARAMS, "post")}

    @classmethod
    def from_package(cls, ctx: PackageContext) -> DETRKeypoints:
        model = super().from_package(ctx)
        assert isinstance(model, DETRKeypoints)
        net_names = list(model._network_names or model.class_names)
        per_class: list[list[str]] = [[] for _ in net_names]
        skeletons: list[list[tuple[int, int]]] = [[] for _ in net_names]
        if ctx.has("keypoints_metadata.json"):
            names, edges = parse_keypoints_metadata(ctx.read_json("keypoints_metadata.json"))
            for cid, (n, e) in enumerate(zip(names, edges)):
                if cid < len(per_class):
                    per_class[cid], skeletons[cid] = n, e
        model._kp_names = per_class  # indexed by network class id
        model._kp_skeletons = skeletons
        return model

    _kp_names: list[list[str]]
    _kp_skeletons: list[list[tuple[int, int]]]

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[Detections]:
        kp_out = next((r for r in raw if r.ndim == 4), None)
        three = [r for r in raw if r.ndim == 3]
        boxes = next((r for r in three if r.shape[2] == 4), None)
        logits = next((r for r in three if r is not boxes), None)
        if kp_out is None or boxes is None or logits is None:
            raise CorruptedModelPackageError(
                "An RF-DETR keypoint model needs (B, Q, 4) boxes, (B, Q, C) logits and (B, Q, C·K, D) keypoints; "
                f"got {[tuple(r.shape) for r in raw]}."
            )
        net_names = list(self._network_names or self.class_names)
        c = int(logits.shape[2])
        slots, d = int(kp_out.shape[2]), int(kp_out.shape[3])
        if slots % c or d < 3:
            raise CorruptedModelPackageError(
                f"RF-DETR keypoints {tuple(kp_out.shape)} do not hold K slots of D ≥ 3 values for each of {c} classes."
            )
        k = slots // c
        p = resolve_detection_params(
            params, net_names, len(net_names), recommended=self.package.recommended, confidence=DEFAULT_CONFIDENCE
        )
        kp_thr = params.get("key_points_threshold")
        kp_thr = DEFAULT_KEYPOINT_THRESHOLD if kp_thr is None else kp_thr
        if isinstance(kp_thr, bool) or not isinstance(kp_thr, (int, float)) or not 0 <= kp_thr <= 1:
            raise InvalidParameterError(f"key_points_threshold must be a number in [0, 1], got {kp_thr!r}.")
        counts = np.array([min(len(n), k) for n in self._kp_names] + [k] * max(0, c - len(self._kp_names)))
        if not any(self._kp_names):
            counts[:] = k  # no metadata: every slot is a keypoint
        remap = self._remap if self._remap is not None else np.arange(len(net_names))
        results = []
        for i, t in enumerate(prepared.transforms):
            sig = 1.0 / (1.0 + np.exp(-to_numpy(logits[i]).astype(np.float32)))  # (Q, C)
            q, lab = np.divmod(np.argsort(-sig.reshape(-1), kind="stable"), c)
            s = sig[q, lab]
            named = lab < len(net_names)
            q, lab, s = q[named], lab[named], s[named]
            if p.class_mask is not None:
                keep = p.class_mask[lab]
                q, lab, s = q[keep], lab[keep], s[keep]
            kps = to_numpy(kp_out[i]).astype(np.float32).reshape(-1, c, k, d)[q, lab]  # (n, K, D)
            if d >= 7:
                s = fused_keypoint_scores(s, kps)
            new = remap[lab]
            keep = (new >= 0) & (s >= p.thresholds[lab])
            q, lab, s, kps, new = q[keep], lab[keep], s[keep], kps[keep], new[keep]
            order = np.argsort(-s, kind="stable")[: p.max_detections]
            q, lab, s, kps, new = q[order], lab[order], s[order], kps[order], new[order]
            xyxy = xywh_to_xyxy(to_numpy(boxes[i]).astype(np.float32)[q].reshape(-1, 4))
            xyxy[:, 0::2] *= t.input_width
            xyxy[:, 1::2] *= t.input_height
            xy = kps[..., :2] * np.array([t.input_width, t.input_height], np.float32)
            xy = t.points_to_original(xy, clip=True)
            conf = 1.0 / (1.0 + np.exp(-kps[..., 2])) if d >= 3 else np.ones(kps.shape[:2], np.float32)
            off = (np.arange(k)[None, :] >= counts[lab][:, None]) | (conf < kp_thr)
            xy[off] = 0.0
            conf = np.where(off, 0.0, conf).astype(np.float32)
            present = {int(v) for v in lab}
            kinds = {tuple(self._kp_names[v]) for v in (present or range(len(self._kp_names))) if self._kp_names[v]}
            kp_names: tuple[str, ...] = next(iter(kinds)) if len(kinds) == 1 else ()
            if len(kp_names) != k:
                kp_names = ()  # classes with different keypoints (or fewer than the slots): names left out
            owner = next((v for v in range(len(self._kp_names)) if tuple(self._kp_names[v]) == kp_names), None)
            skeleton = self._kp_skeletons[owner] if kp_names and owner is not None else []
            results.append(
                Detections(
                    t.boxes_to_original(xyxy),
                    s,
                    new,
                    list(self.class_names),
                    keypoints=xy,
                    keypoint_confidence=conf,
                    keypoint_names=kp_names,
                    skeleton=skeleton,
                )
            )
        return results
