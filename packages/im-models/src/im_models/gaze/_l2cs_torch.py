"""The L2CS-Net network in torch, with the state-dict keys of the published checkpoints.

``build_l2cs_network()`` gives the ResNet-50 of ``L2CSNet_gaze360.pkl``: torchvision-style ``conv1`` / ``bn1`` /
``layer1``…``layer4`` (Bottleneck blocks, expansion 4, stride on the 3×3 convolution), global average pooling, and
the heads ``fc_yaw_gaze`` / ``fc_pitch_gaze`` (``Linear(2048, bins)``) plus the unused ``fc_finetune``
(``Linear(2048 + 3, 3)``), so ``load_state_dict(torch.load("L2CSNet_gaze360.pkl"), strict=True)`` works and the
module can be exported to ONNX for :class:`im_models.gaze._l2cs.L2CSGaze`. Smaller ``layers`` / ``width`` give
the same structure at a fraction of the cost (for tests).

torch is imported inside the function, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_l2cs_network"]

_EXPANSION = 4


def build_l2cs_network(layers: tuple[int, int, int, int] = (3, 4, 6, 3), bins: int = 90, width: int = 64) -> Any:
    """Build an untrained L2CS-Net (``torch.nn.Module`` in eval mode).

    Args:
        layers: Bottleneck blocks per stage ((3, 4, 6, 3) = ResNet-50, the published model).
        bins: angle bins per head (90 for Gaze360, 28 for MPIIGaze).
        width: channels of the stem (64 in ResNet-50); stage ``i`` has ``width * 2**i`` bottleneck channels.

    Returns:
        A module whose ``forward(x)`` takes float (N, 3, H, W) ImageNet-normalised RGB and returns
        ``(yaw_logits, pitch_logits)``, each float (N, bins).
    """
    from torch import nn

    class _Bottleneck(nn.Module):
        def __init__(self, cin: int, planes: int, stride: int) -> None:
            super().__init__()
            cout = planes * _EXPANSION
            self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x: Any) -> Any:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    class _L2CS(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = width
            for i, blocks in enumerate(layers):
                planes = width * 2**i
                stage = []
                for b in range(blocks):
                    stage.append(_Bottleneck(cin, planes, 2 if (b == 0 and i > 0) else 1))
                    cin = planes * _EXPANSION
                setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc_yaw_gaze = nn.Linear(cin, bins)
            self.fc_pitch_gaze = nn.Linear(cin, bins)
            self.fc_finetune = nn.Linear(cin + 3, 3)  # present in the checkpoints, unused by forward

        def forward(self, x: Any) -> Any:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # type: ignore[operator]  # set by setattr
            x = self.avgpool(x).flatten(1)
            return self.fc_yaw_gaze(x), self.fc_pitch_gaze(x)

    return _L2CS().eval()
