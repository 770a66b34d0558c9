"""Reference hue rotation from Python's colorsys (an implementation independent of ours and of
torchvision's tensor code) for @dfd/datasets' colour-jitter tests:
    /usr/bin/python3 tools/datasets/make-hue-fixture.py
"""
import colorsys
import json
import random

random.seed(3)
pixels = [[random.random() for _ in range(3)] for _ in range(200)]
pixels += [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5], [1, 1, 0], [0.2, 0.9, 0.9]]
cases = []
for shift in (0.3, -0.25, 0.45, -0.4):
    out = []
    for r, g, b in pixels:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        out.append(list(colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)))
    cases.append({'shift': shift, 'expected': out})
with open('packages/datasets/src/__fixtures__/hue.json', 'w') as f:
    json.dump({'generator': 'tools/datasets/make-hue-fixture.py', 'pixels': pixels, 'cases': cases}, f)
print('wrote', len(cases), 'cases of', len(pixels), 'pixels')
