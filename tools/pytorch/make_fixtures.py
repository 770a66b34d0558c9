#!/usr/bin/python3
"""Parity fixtures for @dfd/backbone, @dfd/attention, @dfd/mip and @dfd/model, from PyTorch.

Run with Debian's python3-torch:  /usr/bin/python3 tools/pytorch/make_fixtures.py
Writes packages/model/test/fixtures/ (committed, ~1 MB, so tests never need PyTorch):

  <case>.json + <case>.bin   one fixture per case: the JSON lists named tensors (dtype, shape,
                             byte offset into the .bin, little-endian) in three groups:
                               weights   the state_dict in PyTorch layout (OIHW, [out, in]),
                                         num_batches_tracked left out; float16 because every
                                         weight is first rounded to a float16 value, so the
                                         float32 model PyTorch runs is exactly what the file holds
                               inputs    images already in NHWC (the TS layout), float16 likewise
                               expected  outputs, float32, image-shaped ones in NHWC
  cases:
    ddl_att_eifp_w8   DDL layout, 8 base channels, att+eifp (mi_dims [16, 12], mi_hidden 32).
                      Inference on a 2x32x32 batch and on a 1x90x90 image: stage outputs, f_fused,
                      attOut, logits, MI predictions. One training-mode forward on the 32x32 batch:
                      the same outputs with batch statistics, every BN running_mean/running_var after
                      the update, and the gradients of L = CE + gamma * L_MI (GRL lambda 0.7) for a
                      few parameters spread over the network.
    tv_att_w4         torchvision layout, 4 base channels, att: inference on 1x90x90 (stages
                      23/12/6/3), training forward on a 2x48x48 batch with the running stats.
    eife_w4           EIFE, 4 base channels, factors gender 3 / race 3 / age 5, embed 16: inference
                      embedding and logits, and the summed cross-entropy for given labels.
  tiny_dfdnet.pth + tiny_dfdnet.json
                      torch.save(model.state_dict()) of a 4-base-channel att+eifp DFD-Net
                      (mi_dims [32, 32], mi_hidden 32) with random BN statistics, and the expected
                      inference logits / attOut / MI predictions for a 2x90x90 input (for the importer).

Random weights: PyTorch's default init, then BN weight U(0.6, 1.4), bias N(0, 0.2), running_mean
N(0, 0.2), running_var U(0.5, 2), PReLU slopes U(0.05, 0.45), delta U(0.6, 1.4).
"""
import base64
import copy
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dfd_ref  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'packages', 'model', 'test', 'fixtures')


def f16(t):
    return t.detach().to(torch.float16).to(torch.float32)


def randomize(model, gen):
    """Random BN statistics/affine, PReLU slopes and delta; every tensor rounded to float16 values."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) * 0.8 + 0.6)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
            elif isinstance(m, torch.nn.PReLU):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.4 + 0.05)
        for name, p in model.named_parameters():
            if name.endswith('delta'):
                p.copy_(torch.rand(2, generator=gen) * 0.8 + 0.6)
        for t in list(model.parameters()) + [b for n, b in model.named_buffers() if not n.endswith('num_batches_tracked')]:
            t.copy_(f16(t))


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous() if t.dim() == 4 else t.detach().contiguous()


class Writer:
    def __init__(self):
        self.buf = bytearray()
        self.groups = {}

    def add(self, group, name, tensor, dtype='float32'):
        t = tensor.detach().contiguous()
        if dtype == 'float16':
            assert torch.equal(f16(t), t.to(torch.float32)), f'{name} is not float16-exact'
            data = t.to(torch.float16).numpy().tobytes()
        else:
            data = t.to(torch.float32).numpy().tobytes()
        while len(self.buf) % 4:
            self.buf.append(0)
        self.groups.setdefault(group, {})[name] = {'dtype': dtype, 'shape': list(t.shape), 'offset': len(self.buf)}
        self.buf += data

    def save(self, case, meta):
        with open(os.path.join(OUT, f'{case}.bin'), 'wb') as f:
            f.write(bytes(self.buf))
        doc = dict(meta)
        doc['bin'] = f'{case}.bin'
        doc.update(self.groups)
        with open(os.path.join(OUT, f'{case}.json'), 'w') as f:
            json.dump(doc, f, indent=1)
        print(f'{case}: {len(self.buf)} bytes, {sum(len(g) for g in self.groups.values())} tensors')


def add_weights(w, model):
    for k, v in model.state_dict().items():
        if k.endswith('num_batches_tracked'):
            continue
        w.add('weights', k, v, 'float16')


def add_outputs(w, prefix, out):
    for i, s in enumerate(out['stages']):
        w.add('expected', f'{prefix}.stage{i}', nhwc(s))
    if 'fused' in out:
        w.add('expected', f'{prefix}.fused', nhwc(out['fused']))
    if 'attOut' in out:
        w.add('expected', f'{prefix}.attOut', out['attOut'])
    w.add('expected', f'{prefix}.logits', out['logits'])
    for k, p in enumerate(out.get('mi', [])):
        w.add('expected', f'{prefix}.mi{k}', p)
    mx = max(float(t.abs().max()) for t in out['stages'] + [out['logits']])
    print(f'  {prefix}: max |activation| {mx:.3f}')


def image(gen, n, size):
    return f16(torch.randn(n, 3, size, size, generator=gen))


def case_ddl():
    gen = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    cfg = dict(variant='att+eifp', base=8, layout='ddl', mi_dims=[16, 12], mi_hidden=32, num_classes=7)
    m = dfd_ref.DfdNet(**cfg)
    randomize(m, gen)
    w = Writer()
    add_weights(w, m)
    x32 = image(gen, 2, 32)
    x90 = image(gen, 1, 90)
    w.add('inputs', 'x32', nhwc(x32), 'float16')
    w.add('inputs', 'x90', nhwc(x90), 'float16')
    m.eval()
    with torch.no_grad():
        add_outputs(w, 'eval32', m(x32))
        add_outputs(w, 'eval90', m(x90))
    # One training-mode forward + backward of the joint loss (Eq. 10) on a copy.
    mt = copy.deepcopy(m)
    mt.train()
    mt.eifp.lam = 0.7
    gamma = 0.5
    labels = torch.tensor([3, 5])
    targets = [f16(torch.randn(2, d, generator=gen)) for d in cfg['mi_dims']]
    out = mt(x32)
    add_outputs(w, 'train32', out)
    ce = F.cross_entropy(out['logits'], labels)
    lmi = sum(F.smooth_l1_loss(p, t.detach(), beta=1.0) for p, t in zip(out['mi'], targets))
    loss = ce + gamma * lmi
    loss.backward()
    for k, t in enumerate(targets):
        w.add('inputs', f'target{k}', t, 'float16')
    w.add('expected', 'train32.ce', ce.detach().reshape(1))
    w.add('expected', 'train32.lmi', lmi.detach().reshape(1))
    for n, b in mt.named_buffers():
        if not n.endswith('num_batches_tracked'):
            w.add('expected', f'train32.buffers.{n}', b)
    grad_names = [
        'efe.stem.conv.weight',
        'efe.stages.0.0.bn1.weight',
        'efe.stages.1.0.shortcut.weight',
        'efe.stages.3.1.act2.weight',
        'attention.delta',
        'attention.proj.weight',
        'attention.mask.bn2.weight',
        'attention.select.bn.bias',
        'classifier.weight',
        'eifp.heads.0.fc1.weight',
        'eifp.heads.1.act.weight',
        'eifp.heads.1.fc2.bias',
    ]
    params = dict(mt.named_parameters())
    for n in grad_names:
        w.add('expected', f'train32.grad.{n}', params[n].grad)
    meta = {
        'description': 'DDL att+eifp, 8 base channels (width 0.125); see tools/pytorch/make_fixtures.py',
        'config': {'variant': 'att+eifp', 'width': 0.125, 'layout': 'ddl', 'miDims': cfg['mi_dims'], 'miHidden': 32, 'numClasses': 7},
        'train': {'labels': labels.tolist(), 'gamma': gamma, 'lambda': 0.7},
        'parameterCount': sum(p.numel() for p in m.parameters()),
    }
    w.save('ddl_att_eifp_w8', meta)


def case_tv():
    gen = torch.Generator().manual_seed(22)
    torch.manual_seed(22)
    m = dfd_ref.DfdNet('att', base=4, layout='torchvision')
    randomize(m, gen)
    w = Writer()
    add_weights(w, m)
    x90 = image(gen, 1, 90)
    x48 = image(gen, 2, 48)
    w.add('inputs', 'x90', nhwc(x90), 'float16')
    w.add('inputs', 'x48', nhwc(x48), 'float16')
    m.eval()
    with torch.no_grad():
        add_outputs(w, 'eval90', m(x90))
    m.train()
    with torch.no_grad():
        add_outputs(w, 'train48', m(x48))
    for n, b in m.named_buffers():
        if not n.endswith('num_batches_tracked'):
            w.add('expected', f'train48.buffers.{n}', b)
    meta = {
        'description': 'torchvision layout att, 4 base channels (width 0.0625)',
        'config': {'variant': 'att', 'width': 0.0625, 'layout': 'torchvision', 'numClasses': 7},
        'parameterCount': sum(p.numel() for p in m.parameters()),
    }
    w.save('tv_att_w4', meta)


def case_eife():
    gen = torch.Generator().manual_seed(33)
    torch.manual_seed(33)
    factors = [('gender', 3), ('race', 3), ('age', 5)]
    m = dfd_ref.Eife(factors, base=4, embed_dim=16)
    randomize(m, gen)
    w = Writer()
    add_weights(w, m)
    x = image(gen, 3, 32)
    w.add('inputs', 'x32', nhwc(x), 'float16')
    labels = {'gender': [0, 2, 1], 'race': [1, 1, 0], 'age': [4, 0, 2]}
    m.eval()
    with torch.no_grad():
        out = m(x)
        w.add('expected', 'embedding', out['embedding'])
        for n, l in out['logits'].items():
            w.add('expected', f'logits.{n}', l)
        loss = sum(F.cross_entropy(out['logits'][n], torch.tensor(labels[n])) for n, _ in factors)
        w.add('expected', 'loss', loss.reshape(1))
    meta = {
        'description': 'EIFE, 4 base channels, embed 16',
        'config': {'factors': [{'name': n, 'classes': k} for n, k in factors], 'width': 0.0625, 'layout': 'ddl', 'embedDim': 16},
        'labels': labels,
    }
    w.save('eife_w4', meta)


def tiny_pth():
    gen = torch.Generator().manual_seed(44)
    torch.manual_seed(44)
    m = dfd_ref.DfdNet('att+eifp', base=4, mi_dims=[32, 32], mi_hidden=32)
    randomize(m, gen)
    m.eval()
    x = image(gen, 2, 90)
    torch.save(m.state_dict(), os.path.join(OUT, 'tiny_dfdnet.pth'))
    with torch.no_grad():
        out = m(x)
    doc = {
        'description': 'tiny_dfdnet.pth: att+eifp DFD-Net, 4 base channels (width 0.0625), miDims [32, 32], miHidden 32; '
        'input = NHWC float16 little-endian, base64, expected = inference outputs',
        'config': {'variant': 'att+eifp', 'width': 0.0625, 'layout': 'ddl', 'miDims': [32, 32], 'miHidden': 32, 'numClasses': 7},
        'input': {'shape': [2, 90, 90, 3], 'dtype': 'float16', 'layout': 'NHWC', 'base64': base64.b64encode(nhwc(x).to(torch.float16).numpy().tobytes()).decode()},
        'logits': out['logits'].tolist(),
        'attOut': out['attOut'].tolist(),
        'mi': [p.tolist() for p in out['mi']],
    }
    with open(os.path.join(OUT, 'tiny_dfdnet.json'), 'w') as f:
        json.dump(doc, f)
    print('tiny_dfdnet.pth', os.path.getsize(os.path.join(OUT, 'tiny_dfdnet.pth')), 'bytes')


if __name__ == '__main__':
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    case_ddl()
    case_tv()
    case_eife()
    tiny_pth()
    full = dfd_ref.DfdNet('att+eifp')
    print('full-width att+eifp trainable parameters:', sum(p.numel() for p in full.parameters() if p.requires_grad))
