"""The demo CNN as trained by scripts/train_models.py (a copy for reading: hover a layer name such as
conv1 or fc after "QuantLens: Analyze Quantization" to see its quantization stats)."""
import torch
from torch import nn
import torch.nn.functional as F


class MnistCnn(nn.Module):
    """Small CNN: Conv, depthwise Conv, residual Add, surviving BatchNorm, GAP, Gemm.

    The BatchNorms right after a Conv (bn1, bn3) are folded into the Conv by the
    ONNX exporter in eval mode. bn_res normalises the output of the residual Add
    and bn_head sits after a ReLU, so neither can be folded: both stay as real
    inference-mode BatchNormalization nodes in the exported graph.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)  # 28 -> 14
        # residual block: depthwise 3x3 + pointwise 1x1, Add, BN, ReLU
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.pw = nn.Conv2d(32, 32, 1)
        self.bn_res = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False)  # 14 -> 7
        self.bn3 = nn.BatchNorm2d(64)
        self.bn_head = nn.BatchNorm2d(64)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.conv2(x))
        y = self.pw(F.relu(self.dw(x)))
        x = F.relu(self.bn_res(x + y))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.bn_head(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)

