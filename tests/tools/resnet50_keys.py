#!/usr/bin/env python3
"""Write the state_dict key list of torchvision's resnet50 (names and shapes, buffers included).

    python3 resnet50_keys.py > tests/data/reference/resnet50_keys.txt

One line per tensor, in state_dict order: "name<TAB>(d0, d1, ...)", the format of the other key
lists in tests/data/reference/. With torchvision installed the list comes from
torchvision.models.resnet50(); without it, from a mirror of torchvision's
models/resnet.py (Bottleneck with expansion 4, layers [3, 4, 6, 3], downsample =
Sequential(conv1x1, BatchNorm2d) on the first block of each stage, fc = Linear(2048, 1000)).
Both give the same 320 lines (161 parameters, 159 BatchNorm buffers).
"""

import sys


def from_torchvision():
    import torchvision

    return [(k, tuple(v.shape)) for k, v in torchvision.models.resnet50().state_dict().items()]


def mirrored(num_classes=1000):
    keys = []

    def conv(name, cout, cin, k):
        keys.append((name + ".weight", (cout, cin, k, k)))

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            keys.append((f"{name}.{p}", (c,)))
        keys.append((name + ".num_batches_tracked", ()))

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
        for b in range(blocks):
            prefix = f"layer{stage}.{b}"
            conv(prefix + ".conv1", planes, inplanes, 1)
            bn(prefix + ".bn1", planes)
            conv(prefix + ".conv2", planes, planes, 3)
            bn(prefix + ".bn2", planes)
            conv(prefix + ".conv3", planes * 4, planes, 1)
            bn(prefix + ".bn3", planes * 4)
            if b == 0:
                conv(prefix + ".downsample.0", planes * 4, inplanes, 1)
                bn(prefix + ".downsample.1", planes * 4)
            inplanes = planes * 4
    keys.append(("fc.weight", (num_classes, 2048)))
    keys.append(("fc.bias", (num_classes,)))
    return keys


def main():
    try:
        keys = from_torchvision()
    except ImportError:
        print("torchvision not installed: writing the mirrored structure", file=sys.stderr)
        keys = mirrored()
    for name, shape in keys:
        print(f"{name}\t{shape}")


if __name__ == "__main__":
    main()
