#!/usr/bin/env python3
"""Write the importer's parsing fixtures to packages/model/test/import-fixtures/.

Run with Debian's python3-torch:  /usr/bin/python3 tools/pytorch/make_import_fixtures.py
Outputs (all small, committed):
  tiny.pth              torch.save of an OrderedDict state dict: conv/bn/linear weights, a
                        transposed (non-contiguous) view, a view with a storage offset that shares
                        its storage with another entry, float16/bfloat16/float64/int32/uint8/bool
                        tensors, a 0-d scalar and BN's int64 num_batches_tracked.
  tiny.safetensors      the same tensors (contiguous), safetensors written by hand (format: u64 LE
                        header length, JSON header, raw little-endian data).
  wrapped.pth           {'state_dict': {'module.<key>': ...}, 'epoch': 7, ...} as training scripts
                        save it (DataParallel prefix, extra non-tensor entries, bytes).
  malicious_os_system.pth / malicious_eval.pth
                        zip archives shaped like torch.save output whose data.pkl calls os.system /
                        builtins.eval on load; each writes the file named by $DFD_MARKER. This
                        script checks that torch.load(weights_only=False) really runs them (in a
                        subprocess, marker in a temp dir), so the JS refusal test is meaningful.
  expected.json         per key of tiny.pth: shape, dtype, contiguous values (python-side truth).
  cli_dfdnet.pth        a reduced-width (4 base channels) att+eifp DFD-Net from tools/pytorch/dfd_ref.py
                        with random weights and BN statistics, for the always-on CLI test
                        (dfd convert -> dfd predict --json).
  cli_backbone.safetensors
                        cli_dfdnet.pth's efe.* tensors renamed backbone.*, plus an fc head (backbone-only import).
  cli_*.png, cli_expected.json
                        images (RGB, greyscale, a flat colour at another size) and PyTorch's eval-mode
                        logits for them (ImageNet normalisation; the flat image's reference is the
                        same colour at 90x90, as any resize of a constant image is that constant).

`make_import_fixtures.py e2e DIR [--base 64]` (used by the opt-in full-width CLI test): reads
DIR/inputs.json ({"images": [{"name", "raw", "width", "height"}]}, raw = RGB uint8 HxWx3 files
at the model's input size), writes DIR/dfdnet.pth (random att+eifp DFD-Net at the given width)
and DIR/torch_logits.json ({name: logits}).
"""
import collections
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dfd_ref  # noqa: E402  (the other reference: canonical DFD-Net in PyTorch)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'packages', 'model', 'test', 'import-fixtures')
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)


def tiny_state_dict():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, bias=False)
    bn = torch.nn.BatchNorm2d(4)
    bn.train()
    bn(torch.randn(2, 4, 5, 5))  # non-trivial running stats, num_batches_tracked = 1
    fc = torch.nn.Linear(4, 2)
    sd = collections.OrderedDict()
    for k, v in conv.state_dict().items():
        sd['conv.' + k] = v
    for k, v in bn.state_dict().items():
        sd['bn.' + k] = v
    for k, v in fc.state_dict().items():
        sd['fc.' + k] = v
    base = torch.arange(20, dtype=torch.float32).reshape(4, 5) / 8 - 1
    sd['base'] = base
    sd['transposed'] = base.t()                # stride (1, 5): non-contiguous
    sd['offset_view'] = base[1:, 2:]           # storage_offset 7, stride (5, 1)
    sd['strided_step'] = base[::2, ::2]        # stride (10, 2)
    sd['half'] = torch.tensor([[0.5, -1.25, 65504.0], [6.1e-5, 1e-7, -0.0]], dtype=torch.float16)
    sd['bf16'] = torch.tensor([1.0, -2.5, 3.140625, 1e30], dtype=torch.bfloat16)
    sd['double'] = torch.tensor([1.0 / 3.0, -2.0e-8, 12345.678], dtype=torch.float64)
    sd['int32'] = torch.tensor([[-3, 0], [7, 2147483647]], dtype=torch.int32)
    sd['uint8'] = torch.tensor([0, 7, 255], dtype=torch.uint8)
    sd['mask'] = torch.tensor([True, False, True])
    sd['scalar'] = torch.tensor(2.75)
    sd['prelu.weight'] = torch.full((1,), 0.25)
    # Module.state_dict() sets this attribute; it pickles as a BUILD on the OrderedDict.
    sd._metadata = collections.OrderedDict([('', {'version': 1}), ('bn', {'version': 2})])
    return sd


def dtype_name(t):
    return str(t.dtype).replace('torch.', '')


def expected(sd):
    out = {}
    for k, v in sd.items():
        c = v.contiguous()
        vals = c.flatten().tolist()
        if c.dtype == torch.bool:
            vals = [int(x) for x in vals]
        out[k] = {
            'shape': list(v.shape),
            'dtype': dtype_name(v),
            'contiguous': bool(v.is_contiguous()),
            'storage_offset': int(v.storage_offset()),
            'stride': list(v.stride()),
            # float16/bfloat16/float64 values as the float32 the importer must produce
            'values': c.float().flatten().tolist() if c.is_floating_point() else vals,
        }
    return out


ST_DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
             torch.int64: 'I64', torch.int32: 'I32', torch.uint8: 'U8', torch.bool: 'BOOL'}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype('<i2').tobytes()
    return t.numpy().newbyteorder('<').tobytes() if t.numpy().dtype.byteorder == '>' else t.numpy().tobytes()


def write_safetensors(path, sd):
    header, blobs, off = {}, [], 0
    for k, v in sd.items():
        b = tensor_bytes(v)
        header[k] = {'dtype': ST_DTYPES[v.dtype], 'shape': list(v.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header['__metadata__'] = {'format': 'pt', 'source': 'make_import_fixtures.py'}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)  # the reference writer pads the header to 8 bytes
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class _Evil:
    """Pickles as a call: unpickling runs fn(arg)."""
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def write_malicious(path, pkl_bytes, legit):
    # Same zip layout torch.save writes: <name>/data.pkl, <name>/data/<key>, <name>/version.
    torch.save(legit, path)
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    prefix = [n for n in entries if n.endswith('/data.pkl')][0][:-len('data.pkl')]
    entries[prefix + 'data.pkl'] = pkl_bytes
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_STORED) as z:
        for n, b in entries.items():
            z.writestr(n, b)


def malicious_pickle(kind, legit_tensor_pickle_dict):
    shell = 'touch "${DFD_MARKER:-/tmp/dfd-import-pwned}"'
    if kind == 'os_system':
        # Hand-written protocol-2 pickle: {'ok': <nothing>, 'evil': os.system(shell)} via GLOBAL 'os system'.
        cmd = shell.encode()
        return (b'\x80\x02}q\x00(X\x02\x00\x00\x00okq\x01K\x01X\x04\x00\x00\x00evilq\x02cos\nsystem\nq\x03'
                + b'X' + struct.pack('<I', len(cmd)) + cmd + b'\x85q\x04Rq\x05u.')
    # builtins.eval through STACK_GLOBAL (protocol 4), nested below a real state dict entry.
    code = "__import__('os').system('" + shell.replace("'", "\\'") + "')"
    return pickle.dumps({'state_dict': {'w': 1.5, 'evil': _Evil(eval, code)}}, protocol=4)


def check_malicious_runs(path):
    with tempfile.TemporaryDirectory() as d:
        marker = os.path.join(d, 'marker')
        env = dict(os.environ, DFD_MARKER=marker)
        subprocess.run([sys.executable, '-c', f"import torch; torch.load({path!r}, weights_only=False) if 'weights_only' in torch.load.__code__.co_varnames else torch.load({path!r})"],
                       env=env, check=False, capture_output=True)
        if not os.path.exists(marker):
            raise SystemExit(f'{path}: torch.load did not run the payload; the fixture proves nothing')
        print(f'checked: torch.load({os.path.basename(path)}) executes the payload (marker written)')


MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def randomised_dfdnet(base, mi_dims, seed):
    """att+eifp DFD-Net whose every parameter and BN statistic is random (eval-mode BN is not identity)."""
    torch.manual_seed(seed)
    m = dfd_ref.DfdNet('att+eifp', base=base, mi_dims=mi_dims)
    with torch.no_grad():
        for name, mod in m.named_modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.normal_(0, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.num_batches_tracked.fill_(100)
            elif isinstance(mod, torch.nn.PReLU):
                mod.weight.uniform_(0.05, 0.4)
        m.attention.delta.copy_(torch.tensor([0.8, 1.3]))
        # Random heads give near-constant logits; a larger classifier makes them depend on the image
        # enough that a wrong preprocessing step (channel order, greyscale, normalisation) shows.
        m.classifier.weight.mul_(40.0)
    return m.eval()


def reference_logits(model, rgb):
    """Eval-mode logits of one HxWx3 uint8 image, ImageNet-normalised, as float64 list."""
    x = (rgb.astype(np.float32) / 255.0 - MEAN) / STD
    t = torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0).contiguous()
    with torch.no_grad():
        return model(t)['logits'][0].double().tolist()


def cli_fixtures():
    model = randomised_dfdnet(4, (16, 8), seed=3)
    torch.save(model.state_dict(), os.path.join(OUT, 'cli_dfdnet.pth'))
    # The same EFE as a backbone-only safetensors file under another prefix, with a foreign head.
    bb = collections.OrderedDict(('backbone.' + k[len('efe.'):], v) for k, v in model.state_dict().items() if k.startswith('efe.'))
    bb['fc.weight'] = torch.randn(10, 32)
    bb['fc.bias'] = torch.randn(10)
    write_safetensors(os.path.join(OUT, 'cli_backbone.safetensors'), bb)
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:90, 0:90]
    rgb = np.stack([128 + 100 * np.sin(xx / 9.0), 128 + 100 * np.cos(yy / 7.0), (xx + yy) * 255.0 / 178], -1)
    rgb = np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)
    grey = np.clip(128 + 90 * np.sin((xx - yy) / 11.0) + rng.normal(0, 15, (90, 90)), 0, 255).astype(np.uint8)
    flat = np.array([200, 60, 90], dtype=np.uint8)
    from PIL import Image
    Image.fromarray(rgb, 'RGB').save(os.path.join(OUT, 'cli_face_rgb.png'))
    Image.fromarray(grey, 'L').save(os.path.join(OUT, 'cli_face_grey.png'))
    Image.fromarray(np.broadcast_to(flat, (53, 37, 3)).copy(), 'RGB').save(os.path.join(OUT, 'cli_flat.png'))
    images = {
        'cli_face_rgb.png': reference_logits(model, rgb),
        'cli_face_grey.png': reference_logits(model, np.repeat(grey[:, :, None], 3, axis=2)),
        'cli_flat.png': reference_logits(model, np.broadcast_to(flat, (90, 90, 3)).copy()),
    }
    with open(os.path.join(OUT, 'cli_expected.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'config': {'variant': 'att+eifp', 'width': 4 / 64, 'miDims': [16, 8], 'inputSize': 90},
                   'logits': images}, f, indent=1)


def e2e(directory, base):
    with open(os.path.join(directory, 'inputs.json')) as f:
        inputs = json.load(f)
    model = randomised_dfdnet(base, (256, 256), seed=11)
    torch.save(model.state_dict(), os.path.join(directory, 'dfdnet.pth'))
    out = {}
    for im in inputs['images']:
        raw = np.fromfile(os.path.join(directory, im['raw']), dtype=np.uint8).reshape(im['height'], im['width'], 3)
        out[im['name']] = reference_logits(model, raw)
    with open(os.path.join(directory, 'torch_logits.json'), 'w') as f:
        json.dump(out, f)
    print(f'e2e: wrote dfdnet.pth (base {base}) and logits for {len(out)} images')


def main():
    if len(sys.argv) > 1 and sys.argv[1] == 'e2e':
        base = int(sys.argv[sys.argv.index('--base') + 1]) if '--base' in sys.argv else 64
        e2e(sys.argv[2], base)
        return
    cli_fixtures()
    sd = tiny_state_dict()
    torch.save(sd, os.path.join(OUT, 'tiny.pth'))
    write_safetensors(os.path.join(OUT, 'tiny.safetensors'), sd)
    wrapped = {'state_dict': collections.OrderedDict(('module.' + k, v) for k, v in sd.items()),
               'epoch': 7, 'best_acc': 0.625, 'arch': 'tiny', 'note': b'bytes\x00\xff', 'tags': {'a', 'b'}}
    torch.save(wrapped, os.path.join(OUT, 'wrapped.pth'))
    for kind in ('os_system', 'eval'):
        p = os.path.join(OUT, f'malicious_{kind}.pth')
        write_malicious(p, malicious_pickle(kind, None), {'ok': torch.ones(1)})
        check_malicious_runs(p)
    # Sanity: torch reads back what it wrote.
    back = torch.load(os.path.join(OUT, 'tiny.pth'))
    assert all(torch.equal(back[k], sd[k]) for k in sd)
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'tensors': expected(sd)}, f, indent=1)
    print('wrote', sorted(os.listdir(OUT)))


if __name__ == '__main__':
    main()
