"""Hand-written reference modules for the speed benchmarks, written the way torchvision writes
them: small explicit classes, in-place activations where the input is not needed again, `+=`
for residual sums. Their state_dict keys are torchvision's (and so the zoo's), so the same
weights load into both sides of a comparison. Written for this project from the papers and the
published layer tables; no torchvision import.

    ResNet-50 (He et al., 2015, v1.5), MobileNetV2 (Sandler et al., 2018), EfficientNet-B0
    (Tan & Le, 2019), DenseNet-121 (Huang et al., 2017).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_act(c_in, c_out, k=3, stride=1, groups=1, act=nn.ReLU6):
    """torchvision's Conv2dNormActivation: conv (no bias), BN, activation (in place)."""
    layers = [nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


def make_divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


# -- ResNet-50 ---------------------------------------------------------------------------------

class Bottleneck(nn.Module):
    def __init__(self, c_in, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c = 64
        for j, (planes, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            stride = 1 if j == 0 else 2
            down = nn.Sequential(nn.Conv2d(c, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
            blocks = [Bottleneck(c, planes, stride, down)]
            blocks += [Bottleneck(planes * 4, planes) for _ in range(n - 1)]
            setattr(self, f"layer{j + 1}", nn.Sequential(*blocks))
            c = planes * 4
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# -- MobileNetV2 -------------------------------------------------------------------------------

class InvertedResidual(nn.Module):
    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        hidden = c_in * t
        self.use_res = stride == 1 and c_in == c_out
        layers = [conv_bn_act(c_in, hidden, 1)] if t != 1 else []
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]     # t, c, n, s

    def __init__(self, num_classes=1000):
        super().__init__()
        features = [conv_bn_act(3, 32, 3, 2)]
        c = 32
        for t, out, n, s in self.SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        features.append(conv_bn_act(c, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


# -- EfficientNet-B0 ---------------------------------------------------------------------------

class SqueezeExcitation(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.activation = nn.SiLU(inplace=True)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * s


class MBConv(nn.Module):
    def __init__(self, c_in, c_out, k, stride, t):
        super().__init__()
        hidden = make_divisible(c_in * t, 8)
        self.use_res = stride == 1 and c_in == c_out
        layers = [conv_bn_act(c_in, hidden, 1, act=nn.SiLU)] if hidden != c_in else []
        layers += [conv_bn_act(hidden, hidden, k, stride, groups=hidden, act=nn.SiLU),
                   SqueezeExcitation(hidden, max(1, c_in // 4)),
                   conv_bn_act(hidden, c_out, 1, act=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        out = self.block(x)
        if self.use_res:
            out += x            # stochastic depth is the identity at inference
        return out


class EfficientNetB0(nn.Module):
    SETTINGS = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]   # t, k, s, in, out, n

    def __init__(self, num_classes=1000):
        super().__init__()
        layers = [conv_bn_act(3, 32, 3, 2, act=nn.SiLU)]
        for t, k, s, c_in, c_out, n in self.SETTINGS:
            layers.append(nn.Sequential(*[MBConv(c_in if i == 0 else c_out, c_out, k, s if i == 0 else 1, t)
                                          for i in range(n)]))
        layers.append(conv_bn_act(320, 1280, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2, inplace=True), nn.Linear(1280, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# -- DenseNet-121 ------------------------------------------------------------------------------

class DenseLayer(nn.Module):
    def __init__(self, c_in, growth=32, bn_size=4):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(c_in, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, n, c_in, growth=32):
        super().__init__()
        for i in range(n):
            self.add_module(f"denselayer{i + 1}", DenseLayer(c_in + i * growth, growth))

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.norm = nn.BatchNorm2d(c_in)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class DenseNet121(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, 64, 7, 2, 3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(64))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(3, 2, 1))
        c = 64
        for i, n in enumerate((6, 12, 24, 16)):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(n, c))
            c += n * 32
            if i != 3:
                self.features.add_module(f"transition{i + 1}", Transition(c, c // 2))
                c //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(c))
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        x = F.relu(self.features(x), inplace=True)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


MODELS = {"resnet50": ResNet50, "mobilenet_v2": MobileNetV2, "efficientnet_b0": EfficientNetB0,
          "densenet121": DenseNet121}
