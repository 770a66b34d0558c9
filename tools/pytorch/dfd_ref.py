#!/usr/bin/python3
"""PyTorch reference implementation of DFD-Net (docs/METHOD.md), with the canonical parameter names.

`torch.save(DfdNet(...).state_dict())` produces exactly the keys the TypeScript model
(@dfd/model) exposes through `namedParameters()` / `namedBuffers()` (plus `num_batches_tracked`,
which the importer ignores). Used by make_fixtures.py to produce parity fixtures and by
`python3 dfd_ref.py` to print parameter counts.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class GradReverse(torch.autograd.Function):
    """Identity forward, gradient times -lambda backward (GRL, Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lam * grad, None


class ConvBnAct(nn.Module):
    """DDL stem: conv3x3 s1 no bias, BN, PReLU (`efe.stem.{conv,bn,act}`)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.PReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class PreActBlock(nn.Module):
    """Pre-activation basic block of METHOD.md; the shortcut conv sees the pre-activated input."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.act1 = nn.PReLU()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = nn.PReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
        else:
            self.shortcut = None

    def forward(self, x):
        o = self.act1(self.bn1(x))
        sc = self.shortcut(o) if self.shortcut is not None else x
        y = self.conv1(o)
        y = self.conv2(self.act2(self.bn2(y)))
        return y + sc


class PreActResNet18(nn.Module):
    """EFE backbone, DDL layout; forward returns the four stage outputs."""

    def __init__(self, base=64):
        super().__init__()
        self.stem = ConvBnAct(3, base)
        chans = [base, base * 2, base * 4, base * 8]
        stages = []
        cin = base
        for c in chans:
            stages.append(nn.Sequential(PreActBlock(cin, c, 2), PreActBlock(c, c, 1)))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.channels = chans

    def forward(self, x):
        x = self.stem(x)
        outs = []
        for s in self.stages:
            x = s(x)
            outs.append(x)
        return outs


class TvBasicBlock(nn.Module):
    """torchvision BasicBlock (post-activation, ReLU); names as torchvision's resnet18."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))
        else:
            self.downsample = None

    def forward(self, x):
        idt = self.downsample(x) if self.downsample is not None else x
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + idt)


class TvResNet18(nn.Module):
    """torchvision resnet18 trunk (no fc): conv1/bn1/layer1..4; forward returns the four stage outputs."""

    def __init__(self, base=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        chans = [base, base * 2, base * 4, base * 8]
        cin = base
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            setattr(self, f'layer{i + 1}', nn.Sequential(TvBasicBlock(cin, c, stride), TvBasicBlock(c, c, 1)))
            cin = c
        self.channels = chans

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 2, 1)
        outs = []
        for i in range(4):
            x = getattr(self, f'layer{i + 1}')(x)
            outs.append(x)
        return outs


def make_backbone(layout, base):
    return PreActResNet18(base) if layout == 'ddl' else TvResNet18(base)


def fuse(stages):
    """Eq. 3: max-pool every earlier stage to the last stage's size, concat channels (NCHW)."""
    hl = stages[-1].shape[2]
    parts = []
    for s in stages[:-1]:
        hj = s.shape[2]
        stride = hj // hl
        window = hj - (hl - 1) * stride
        parts.append(F.max_pool2d(s, window, stride))
    return torch.cat(parts, dim=1)


class Attention(nn.Module):
    """Attention block (Eq. 4-5): proj, delta, mask generator g, selection h, global max pool."""

    def __init__(self, fused_c, c):
        super().__init__()
        self.proj = nn.Conv2d(fused_c, c, 1, bias=False)
        self.delta = nn.Parameter(torch.ones(2))
        self.mask = nn.Module()
        self.mask.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.mask.bn1 = nn.BatchNorm2d(c)
        self.mask.act1 = nn.PReLU()
        self.mask.conv2 = nn.Conv2d(c, c, 1, bias=False)
        self.mask.bn2 = nn.BatchNorm2d(c)
        self.select = nn.Module()
        self.select.conv = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.select.bn = nn.BatchNorm2d(c)
        self.select.act = nn.PReLU()

    def forward(self, fused, f_last):
        z = self.delta[0] * self.proj(fused) + self.delta[1] * f_last
        m = self.mask
        mask = torch.sigmoid(m.bn2(m.conv2(m.act1(m.bn1(m.conv1(z))))))
        s = self.select
        h = s.act(s.bn(s.conv(mask * f_last)))
        return torch.amax(h, dim=(2, 3))


class MiHead(nn.Module):
    """One MIP head of EIFP: fc1, PReLU, fc2 predicting d_k."""

    def __init__(self, cin, hidden, out):
        super().__init__()
        self.fc1 = nn.Linear(cin, hidden)
        self.act = nn.PReLU()
        self.fc2 = nn.Linear(hidden, out)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Eifp(nn.Module):
    def __init__(self, cin, mi_dims, hidden=256):
        super().__init__()
        self.heads = nn.ModuleList([MiHead(cin, hidden, d) for d in mi_dims])
        self.lam = 1.0

    def forward(self, att_out):
        r = GradReverse.apply(att_out, self.lam)
        return [h(r) for h in self.heads]


class DfdNet(nn.Module):
    """DFD-Net, variants base | att | att+eifp."""

    def __init__(self, variant='att+eifp', base=64, layout='ddl', mi_dims=(256, 256), num_classes=7, mi_hidden=256):
        super().__init__()
        self.variant = variant
        self.efe = make_backbone(layout, base)
        c = base * 8
        if variant != 'base':
            fused_c = base + base * 2 + base * 4
            self.attention = Attention(fused_c, c)
        self.classifier = nn.Linear(c, num_classes)
        if variant == 'att+eifp':
            self.eifp = Eifp(c, list(mi_dims), mi_hidden)

    def forward(self, x):
        stages = self.efe(x)
        out = {'stages': stages}
        if self.variant == 'base':
            feat = stages[-1].mean(dim=(2, 3))
        else:
            fused = fuse(stages)
            out['fused'] = fused
            feat = self.attention(fused, stages[-1])
            out['attOut'] = feat
        out['logits'] = self.classifier(feat)
        if self.variant == 'att+eifp':
            out['mi'] = self.eifp(feat)
        return out


class Eife(nn.Module):
    """Stage-1 extractor: backbone + GAP + embed (Linear c->embed, PReLU) + one linear head per factor."""

    def __init__(self, factors, base=64, embed_dim=256, layout='ddl'):
        super().__init__()
        self.efe = make_backbone(layout, base)
        c = base * 8
        self.embed = nn.Linear(c, embed_dim)
        self.embed_act = nn.PReLU()
        self.heads = nn.ModuleDict({name: nn.Linear(embed_dim, k) for name, k in factors})

    def forward(self, x):
        f = self.efe(x)[-1].mean(dim=(2, 3))
        d = self.embed_act(self.embed(f))
        return {'embedding': d, 'logits': {n: h(d) for n, h in self.heads.items()}}


def count(module):
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    buffers = sum(b.numel() for n, b in module.named_buffers() if not n.endswith('num_batches_tracked'))
    return trainable, buffers


if __name__ == '__main__':
    for v in ['base', 'att', 'att+eifp']:
        for layout in ['ddl', 'torchvision']:
            m = DfdNet(v, layout=layout)
            t, b = count(m)
            print(f'{v:9s} {layout:11s} trainable={t:,} buffers(running stats)={b:,} total={t + b:,}')
    m = DfdNet('att+eifp')
    x = torch.randn(1, 3, 90, 90)
    m.eval()
    with torch.no_grad():
        o = m(x)
    print([tuple(s.shape) for s in o['stages']], tuple(o['fused'].shape), tuple(o['logits'].shape))
    e = Eife([('gender', 3), ('race', 3), ('age', 5)])
    print('eife-1', count(e))
