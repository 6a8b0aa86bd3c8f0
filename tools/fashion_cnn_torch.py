"""The tutorial's FashionCNN in PyTorch: the same layers, in the same order, under the same
parameter names (feature_extractor.0.weight ... classifier.5.bias) as minicnn::models::FashionCNN
(include/minicnn/models/fashion_cnn.hpp), so state_dicts and safetensors files pass between the two.

The one definition shared by tools/make_fixtures.py (the committed parity fixtures),
tools/pytorch_fashion_cnn.py, benchmarks/compare_pytorch.py and tests/interop/check_pytorch.py.
Its parameters take PyTorch's default initialisation in construction order, so under a fixed
torch.manual_seed the weights, and the fixtures made from them, are reproducible: adding, removing
or reordering a layer changes them. Needs Debian's python3-torch.
"""

import torch.nn as nn


class FashionCNN(nn.Module):
    """The tutorial's model, exactly: 74,602 parameters, input [N, 1, 28, 28], logits [N, 10]."""

    def __init__(self):
        super().__init__()
        self.feature_extractor = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
            nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, 10))

    def forward(self, x):
        return self.classifier(self.feature_extractor(x))


class FashionCNNSE(FashionCNN):
    """FashionCNN with torchvision's SqueezeExcitation after each conv stage's max-pool, as
    minicnn::models::FashionCNNSE (include/minicnn/models/fashion_cnn_se.hpp): feature_extractor.5
    is SqueezeExcitation(32, 8), feature_extractor.11 SqueezeExcitation(64, 16); the later convs
    move to feature_extractor.6 and .8. 77,282 parameters."""

    SE_REDUCTION = 4

    def __init__(self):
        super().__init__()
        from torchvision.ops import SqueezeExcitation  # only this model needs torchvision

        layers = list(self.feature_extractor)
        layers.insert(5, SqueezeExcitation(32, 32 // self.SE_REDUCTION))
        layers.append(SqueezeExcitation(64, 64 // self.SE_REDUCTION))
        self.feature_extractor = nn.Sequential(*layers)
