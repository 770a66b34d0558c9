#!/usr/bin/python3
"""Reference numbers for @dfd/trainer's AdamW and cosine schedule, from PyTorch.

Run with Debian's python3-torch:  /usr/bin/python3 tools/pytorch/make_adamw_fixture.py
Writes packages/trainer/src/fixtures/adamw.json. The test feeds the same gradients to the
TypeScript AdamW and compares every parameter after every step.
"""
import json
import math
import os

import torch

torch.manual_seed(1234)
OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'packages', 'trainer', 'src', 'fixtures', 'adamw.json')

# Two parameter groups, as the trainer uses them: backbone (low lr) and heads (high lr).
shapes = {'efe.w': [3, 4], 'efe.b': [4], 'heads.w': [4, 2], 'heads.b': [2]}
params = {k: torch.randn(*s, dtype=torch.float64) for k, s in shapes.items()}
init = {k: v.clone() for k, v in params.items()}
groups = [
    {'name': 'backbone', 'params': ['efe.w', 'efe.b'], 'lr': 1e-3, 'weight_decay': 0.01},
    {'name': 'heads', 'params': ['heads.w', 'heads.b'], 'lr': 5e-2, 'weight_decay': 0.1},
]
betas = (0.5, 0.999)
eps = 1e-8
steps = 6
t_max = 4  # epochs of the cosine schedule, stepped once per "epoch" = per step here

tparams = {k: torch.nn.Parameter(v.clone()) for k, v in params.items()}
opt = torch.optim.AdamW(
    [{'params': [tparams[n] for n in g['params']], 'lr': g['lr'], 'weight_decay': g['weight_decay']} for g in groups],
    betas=betas, eps=eps)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=0.0)

grads, after, lrs = [], [], []
for step in range(steps):
    # Gradients of a fixed random quadratic, but with some steps scaled so that v and m differ.
    g = {k: torch.randn(*shapes[k], dtype=torch.float64) * (0.1 if step % 2 else 2.0) for k in shapes}
    lrs.append([pg['lr'] for pg in opt.param_groups])
    for k in shapes:
        tparams[k].grad = g[k].clone()
    opt.step()
    sched.step()
    grads.append({k: g[k].flatten().tolist() for k in shapes})
    after.append({k: tparams[k].detach().flatten().tolist() for k in shapes})

# CosineAnnealingLR closed form over 2*T_max epochs (epoch e -> lr), base 0.5, eta_min 0.01.
p = torch.nn.Parameter(torch.zeros(1))
o = torch.optim.SGD([p], lr=0.5)
s = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.01)
cosine = []
for e in range(11):
    cosine.append(o.param_groups[0]['lr'])
    o.step()
    s.step()

fixture = {
    'generator': 'tools/pytorch/make_adamw_fixture.py',
    'torch': torch.__version__,
    'betas': betas, 'eps': eps, 'tMax': t_max,
    'groups': groups,
    'shapes': shapes,
    'init': {k: v.flatten().tolist() for k, v in init.items()},
    'grads': grads,
    'after': after,
    'lrs': lrs,
    'cosine': {'base': 0.5, 'etaMin': 0.01, 'tMax': 10, 'lrs': cosine},
}
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, 'w') as f:
    json.dump(fixture, f)
print('wrote', os.path.normpath(OUT))
