#!/usr/bin/python3
"""PyTorch reference for `npm run bench`: the same PreAct-ResNet-18-shaped training step and
inference as tools/bench/train.ts (conv + BN + PReLU + max pool + global avg/max pool + linear,
softmax cross-entropy, Adam), on the CPU, channels-last float32.

Prints one JSON line on stdout: {"torch": version, "threads": n, "train": {...}, "infer": {...}}.
Run with /usr/bin/python3 (Debian python3-torch). Threads default to 1, like tfjs wasm in Node.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.a1 = nn.PReLU(cin, 0.25)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.a2 = nn.PReLU(cout, 0.25)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        pre = self.a1(self.bn1(x))
        sc = self.shortcut(pre) if self.shortcut is not None else x
        r = self.conv1(pre)
        r = self.conv2(self.a2(self.bn2(r)))
        return sc + r


class Net(nn.Module):
    def __init__(self, width=1.0, classes=7):
        super().__init__()
        w = lambda c: max(1, round(c * width))
        c1 = w(64)
        self.stem = nn.Conv2d(3, c1, 7, 2, 3, bias=False)
        self.bn = nn.BatchNorm2d(c1)
        self.a = nn.PReLU(c1, 0.25)
        blocks, cin = [], c1
        for i, base in enumerate([64, 128, 256, 512]):
            for j in range(2):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(PreActBlock(cin, w(base), stride))
                cin = w(base)
        self.blocks = nn.Sequential(*blocks)
        self.fin_bn = nn.BatchNorm2d(cin)
        self.fin_a = nn.PReLU(cin, 0.25)
        self.fc = nn.Linear(2 * cin, classes)

    def forward(self, x):
        h = self.a(self.bn(self.stem(x)))
        h = F.max_pool2d(h, 3, 2, 1)
        h = self.blocks(h)
        h = self.fin_a(self.fin_bn(h))
        pooled = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
        return self.fc(pooled)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=90)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--net", choices=["dfd", "resnet"], default="dfd")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    name = "PreAct-ResNet-18 (torch)"
    if a.net == "dfd":
        # The PyTorch reference DFD-Net the TypeScript model is checked against.
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pytorch"))
        from dfd_ref import DfdNet

        net = DfdNet("att+eifp", base=max(1, round(64 * a.width)))
        name = "DFD-Net att+eifp (tools/pytorch/dfd_ref.py)"
    else:
        net = Net(a.width)
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = (torch.rand(a.batch, 3, a.size, a.size) * 2 - 1).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (a.batch,))

    def logits_and_aux():
        out = net(x)
        if isinstance(out, dict):
            # Same loss as tools/bench/train.ts: CE + smooth-L1 (Huber, delta 1) of each MI prediction to 0.
            aux = sum(F.smooth_l1_loss(d, torch.zeros_like(d)) for d in out.get("mi", []))
            return out["logits"], aux
        return out, 0.0

    def step():
        opt.zero_grad(set_to_none=True)
        logits, aux = logits_and_aux()
        loss = F.cross_entropy(logits, y) + aux
        loss.backward()
        opt.step()
        return loss.item()

    def timed(fn, n):
        fn()  # warm-up
        wall, cpu = [], []
        for _ in range(n):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        return statistics.median(wall), statistics.median(cpu)

    net.train()
    tw, tc = timed(step, a.steps)
    net.eval()

    def infer():
        with torch.no_grad():
            return logits_and_aux()[0].sum().item()

    iw, ic = timed(infer, a.steps)
    out = {
        "torch": torch.__version__,
        "net": name,
        "threads": a.threads,
        "batch": a.batch,
        "size": a.size,
        "train": {"stepMs": tw * 1e3, "cpuMs": tc * 1e3, "imgPerSec": a.batch / tw, "imgPerCpuSec": a.batch / tc},
        "infer": {"stepMs": iw * 1e3, "cpuMs": ic * 1e3, "imgPerSec": a.batch / iw, "imgPerCpuSec": a.batch / ic},
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
