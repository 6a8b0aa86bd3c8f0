"""The ResNets of include/minicnn/models/resnet.hpp in PyTorch, and the name -> model table that
the interop checks and benchmarks/compare_pytorch.py share:

    resnet18        torchvision.models.resnet18(num_classes=10) with conv1 replaced by
                    Conv2d(1, 64, 3, 1, 1, bias=False) (maxpool kept); 11,172,810 parameters
    resnet18_se     the same with torchvision.ops.SqueezeExcitation(c, c // 16) named "se" in every
                    BasicBlock, after bn2 and before the addition; 11,261,890 parameters
    fashion_cnn, fashion_cnn_se   from tools/fashion_cnn_torch.py

Their state_dicts carry minicnn's names, in minicnn's order. Weights are torchvision's
initialisation (the replaced conv1 re-initialised as torchvision's loop would), under
torch.manual_seed. Needs Debian's python3-torch and python3-torchvision.
"""

import torch.nn as nn
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.ops import SqueezeExcitation

from fashion_cnn_torch import FashionCNN, FashionCNNSE  # same directory


class SEBasicBlock(BasicBlock):
    """torchvision's BasicBlock with SqueezeExcitation(planes, planes // 16) named "se" applied to
    the residual branch after bn2 (SENet's placement)."""

    SE_REDUCTION = 16

    def __init__(self, inplanes, planes, stride=1, downsample=None, *args, **kwargs):
        super().__init__(inplanes, planes, stride, downsample, *args, **kwargs)
        # Registered before downsample, so the state_dict order is minicnn's (conv1, bn1, conv2,
        # bn2, se, downsample); the names do not depend on it.
        downsample_module = self._modules.pop("downsample", None)  # absent when it is None
        self.se = SqueezeExcitation(planes, planes // self.SE_REDUCTION)
        if downsample_module is not None:
            self.downsample = downsample_module

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return self.relu(out + identity)


def _adapted(model):
    """Replaces conv1 by the one-channel 3x3 stride-1 stem, initialised as torchvision does."""
    model.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


def resnet18(num_classes=10):
    return _adapted(ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes))


def resnet18_se(num_classes=10):
    return _adapted(ResNet(SEBasicBlock, [2, 2, 2, 2], num_classes=num_classes))


# The models both libraries build, by the names the interop checks and benchmarks use.
MODELS = {
    "fashion_cnn": FashionCNN,
    "fashion_cnn_se": FashionCNNSE,
    "resnet18": resnet18,
    "resnet18_se": resnet18_se,
}
