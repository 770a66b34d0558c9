"""Reference outputs of PIL's bilinear resize (what torchvision's Resize/RandomResizedCrop use on
PIL images) for @dfd/datasets' resizeBox tests. Run with Debian's python3 (PIL 9.4):
    /usr/bin/python3 tools/datasets/make-resize-fixture.py
"""
import json
import numpy as np
from PIL import Image

rng = np.random.default_rng(7)
src = rng.integers(0, 256, size=(9, 13, 3), dtype=np.uint8)  # H=9, W=13
img = Image.fromarray(src, 'RGB')
cases = []
for box, out in [((0, 0, 13, 9), (5, 4)), ((0, 0, 13, 9), (20, 17)), ((2, 1, 12, 8), (6, 5)), ((3, 2, 8, 9), (11, 13))]:
    crop = img.crop(box).resize(out, Image.BILINEAR)
    cases.append({'box': {'x': box[0], 'y': box[1], 'width': box[2] - box[0], 'height': box[3] - box[1]},
                  'width': out[0], 'height': out[1], 'data': np.asarray(crop).reshape(-1).tolist()})
fixture = {'generator': 'tools/datasets/make-resize-fixture.py', 'pil': Image.__version__ if hasattr(Image, '__version__') else 'PIL',
           'width': 13, 'height': 9, 'source': src.reshape(-1).tolist(), 'cases': cases}
with open('packages/datasets/src/__fixtures__/pil-resize.json', 'w') as f:
    json.dump(fixture, f)
print('wrote', len(cases), 'cases')
