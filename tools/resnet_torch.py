"""The ResNets of include/minicnn/models/resnet.hpp in PyTorch, and the name -> model table that
the interop checks and benchmarks/compare_pytorch.py share:

    resnet18        torchvision.models.resnet18(num_classes=10) with conv1 replaced by
                    Conv2d(1, 64, 3, 1, 1, bias=False) (maxpool kept); 11,172,810 parameters
    resnet18_se     the same with torchvision.ops.SqueezeExcitation(c, c // 16) named "se" in every
                    BasicBlock, after bn2 and before the addition; 11,261,890 parameters
    fashion_resnet  minicnn's ResNet sized for 28x28 (models::fashion_resnet): conv1 3x3 stride 1
                    (1 -> 32), no maxpool, one torchvision BasicBlock per stage, widths 32 (28x28),
                    64 (14x14), 128 (7x7); 308,074 parameters
    fashion_resnet_se  the same with SqueezeExcitation(c, c // 8) named "se" in every BasicBlock;
                    313,702 parameters
    fashion_cnn, fashion_cnn_se   from tools/fashion_cnn_torch.py

Their state_dicts carry minicnn's names, in minicnn's order. Weights are torchvision's
initialisation (the replaced conv1 re-initialised as torchvision's loop would), under
torch.manual_seed. Needs Debian's python3-torch and python3-torchvision.
"""

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.ops import SqueezeExcitation

from fashion_cnn_torch import FashionCNN, FashionCNNSE  # same directory


class SEBasicBlock(BasicBlock):
    """torchvision's BasicBlock with SqueezeExcitation(planes, planes // SE_REDUCTION) named "se"
    applied to the residual branch after bn2 (SENet's placement)."""

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


def se_basic_block(reduction):
    """SEBasicBlock with SqueezeExcitation(planes, planes // reduction)."""
    return type(f"SEBasicBlock{reduction}", (SEBasicBlock,), {"SE_REDUCTION": reduction})


class SmallResNet(ResNet):
    """minicnn's ResNet(options) beyond torchvision's four fixed stages (models::ResNetOptions):
    conv1 = Conv2d(1, widths[0], 3, 1, 1, bias=False), bn1, relu, maxpool only if `maxpool`, one
    stage per entry of `layers` (planes widths[i]; layer1 stride 1, the others 2), avgpool, fc.
    The stages come from torchvision's own _make_layer (its BasicBlock, its downsample rule), so
    the state_dict names are those of torchvision's ResNet; a stage that is absent has no names.
    Initialisation as torchvision's ResNet (zero_init_residual=False)."""

    def __init__(self, block, layers, widths, maxpool, num_classes=10):
        nn.Module.__init__(self)  # not ResNet.__init__: that one builds four stages of 64..512
        # What ResNet._make_layer reads.
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
        self.conv1 = nn.Conv2d(1, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if maxpool else None
        self.stages = []
        for index, (blocks, planes) in enumerate(zip(layers, widths)):
            stage = self._make_layer(block, planes, blocks, stride=1 if index == 0 else 2)
            setattr(self, f"layer{index + 1}", stage)
            self.stages.append(stage)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[len(layers) - 1] * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for stage in self.stages:
            x = stage(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


# models::fashion_resnet_options(): keep in step with include/minicnn/models/resnet.hpp.
FASHION_RESNET_LAYERS = [1, 1, 1]
FASHION_RESNET_WIDTHS = [32, 64, 128]
FASHION_RESNET_SE_REDUCTION = 8


def resnet18(num_classes=10):
    return _adapted(ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes))


def resnet18_se(num_classes=10):
    return _adapted(ResNet(SEBasicBlock, [2, 2, 2, 2], num_classes=num_classes))


def fashion_resnet(num_classes=10):
    return SmallResNet(BasicBlock, FASHION_RESNET_LAYERS, FASHION_RESNET_WIDTHS, maxpool=False, num_classes=num_classes)


def fashion_resnet_se(num_classes=10):
    return SmallResNet(se_basic_block(FASHION_RESNET_SE_REDUCTION), FASHION_RESNET_LAYERS, FASHION_RESNET_WIDTHS,
                       maxpool=False, num_classes=num_classes)


# The models both libraries build, by the names the interop checks and benchmarks use.
MODELS = {
    "fashion_cnn": FashionCNN,
    "fashion_cnn_se": FashionCNNSE,
    "resnet18": resnet18,
    "resnet18_se": resnet18_se,
    "fashion_resnet": fashion_resnet,
    "fashion_resnet_se": fashion_resnet_se,
}
