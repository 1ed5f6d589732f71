"""Zoo networks written by hand in PyTorch as their usual sources write them (torchvision's
AlexNet, BasicBlock ResNet-18 and GoogLeNet Inception module, the PyTorch tutorials'
LeNet-5), for 'cnncalc check SPEC --against tests/families/zoo.py:FACTORY'; and the
mistakes a spec can make about them (a stride on the wrong convolution, swapped branches)."""

import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.s2 = nn.Conv2d(1, 6, 5), nn.AvgPool2d(2)
        self.c3, self.s4 = nn.Conv2d(6, 16, 5), nn.AvgPool2d(2)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6, self.output = nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = self.s2(torch.tanh(self.c1(x)))
        x = self.s4(torch.tanh(self.c3(x)))
        x = torch.flatten(torch.tanh(self.c5(x)), 1)
        return torch.softmax(self.output(torch.tanh(self.f6(x))), 1)


class AlexNet(nn.Module):
    """torchvision.models.AlexNet, line for line."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    """torchvision's BasicBlock; ``stride_first`` False moves the stride to the second 3x3
    (a mistake to catch)."""

    def __init__(self, inplanes, planes, stride=1, stride_first=True):
        super().__init__()
        s1, s2 = (stride, 1) if stride_first else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, s1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, s2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000, stride_first=True):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, inplanes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride, stride_first),
                                        BasicBlock(planes, planes)))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Inception(nn.Module):
    """GoogLeNet's Inception module as the paper has it (convolutions with biases and ReLU);
    ``swapped`` puts the 5x5 branch before the 3x3 one."""

    def __init__(self, c, ch1, ch3r, ch3, ch5r, ch5, pool, swapped=False):
        super().__init__()
        self.branch1 = nn.Sequential(nn.Conv2d(c, ch1, 1), nn.ReLU(inplace=True))
        self.branch2 = nn.Sequential(nn.Conv2d(c, ch3r, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(ch3r, ch3, 3, padding=1), nn.ReLU(inplace=True))
        self.branch3 = nn.Sequential(nn.Conv2d(c, ch5r, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(ch5r, ch5, 5, padding=2), nn.ReLU(inplace=True))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c, pool, 1),
                                     nn.ReLU(inplace=True))
        self.swapped = swapped

    def forward(self, x):
        b = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        if self.swapped:
            b[1], b[2] = b[2], b[1]
        return torch.cat(b, 1)


def lenet5():
    return LeNet5()


def alexnet():
    return AlexNet()


def resnet18():
    return ResNet18()


def resnet18_stride_on_second_conv():
    return ResNet18(stride_first=False)


def inception3a():
    return Inception(192, 64, 96, 128, 16, 32, 32)


def inception3a_swapped():
    return Inception(192, 64, 96, 128, 16, 32, 32, swapped=True)
