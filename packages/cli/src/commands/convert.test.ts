import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadModelDir } from '@dfd/model/node';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../main.js';

const ROOT = resolve(import.meta.dirname, '../../../..');
const FIX = join(ROOT, 'packages/model/test/import-fixtures');
const work = mkdtempSync(join(tmpdir(), 'dfd-convert-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function dfd(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    return { code: await main(['node', 'dfd', ...args]), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

async function stateOf(dir: string): Promise<Map<string, Float32Array>> {
  const m = await loadModelDir(dir);
  const out = new Map<string, Float32Array>();
  for (const [k, v] of m.namedState()) out.set(k, (await v.data()) as Float32Array);
  m.dispose();
  return out;
}

describe('dfd convert', () => {
  it('refuses an --input that is a link to /dev/zero or a FIFO at once, writing nothing (issue 24, case 2)', async () => {
    const zero = join(work, 'zero.pth');
    symlinkSync('/dev/zero', zero);
    const fifo = join(work, 'pipe.pth');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    for (const [input, what] of [[zero, 'a character device'], [fifo, 'a named pipe (FIFO)']] as const) {
      const out = join(work, 'from-device');
      const r = await dfd('convert', '--input', input, '--out', out);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`dfd: --input ${input}: the checkpoint is ${what}, not a regular file; dfd reads only regular files (symbolic links are followed to what they point to)\n`);
      expect(existsSync(out)).toBe(false);
    }
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("never replaces a folder holding a user's files, nor a regular file, without --overwrite (issue 24, case 1)", async () => {
    // mkdir -p x/sub; echo a > x/sub/thesis.tex; dfd convert --input cli_dfdnet.pth --out x
    const x = join(work, 'users-folder');
    mkdirSync(join(x, 'sub'), { recursive: true });
    writeFileSync(join(x, 'sub', 'thesis.tex'), 'a\n');
    const r = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', x);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`dfd: ${x}: holds files dfd did not write (sub/); refusing to replace it, nothing was changed.`);
    expect(r.stderr).toContain('--overwrite');
    expect(readFileSync(join(x, 'sub', 'thesis.tex'), 'utf8')).toBe('a\n');
    expect(readdirSync(work).filter((n) => n.includes('users-folder'))).toEqual(['users-folder']);
    // A regular file at --out is refused, even with --overwrite.
    const file = join(work, 'notes.txt');
    writeFileSync(file, 'keep me');
    for (const extra of [[], ['--overwrite']]) {
      const f = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', file, ...extra);
      expect(f.code).toBe(1);
      expect(f.stderr).toMatch(/notes\.txt: is a file, not a model folder; refusing to replace it/);
      expect(readFileSync(file, 'utf8')).toBe('keep me');
    }
    // A dfd model folder is replaced (converting twice), and --overwrite replaces the user's folder when asked.
    const m = join(work, 'twice');
    expect((await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', m)).code).toBe(0);
    expect((await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', m)).code).toBe(0);
    expect(readdirSync(m).sort()).toEqual(['model.json', 'weights.bin']);
    const o = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', x, '--overwrite');
    expect(o.code).toBe(0);
    expect(readdirSync(x).sort()).toEqual(['model.json', 'weights.bin']);
  });

  it('names mis-shaped keys when the width is forced wrong, and writes nothing', async () => {
    const out = join(work, 'wrong-width');
    const r = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', out, '--width', '0.125');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^dfd: checkpoint 'cli_dfdnet\.pth' does not match the model: \d+ with the wrong shape \(PyTorch order\): efe\.stem\.conv\.weight \(expected \[8, 3, 3, 3\], got \[4, 3, 3, 3\]\)/);
    expect(existsSync(out)).toBe(false);
  });

  it('names unexpected keys when the variant is forced smaller, and missing ones when larger', async () => {
    const r = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', join(work, 'att'), '--variant', 'att');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unexpected (not in the model): eifp.heads.0.fc1.weight, eifp.heads.0.fc1.bias, eifp.heads.0.act.weight');
    const b = await dfd('convert', '--input', join(FIX, 'cli_backbone.safetensors'), '--out', join(work, 'x'), '--prefix-map', 'backbone.=efe.', 'fc.=classifier.', '--variant', 'att');
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/missing from the checkpoint: attention\.delta, attention\.proj\.weight, attention\.mask\.conv1\.weight/);
  });

  it('refuses a malicious checkpoint from the command line without running it', async () => {
    const marker = join(work, 'pwned');
    process.env.DFD_MARKER = marker;
    try {
      const r = await dfd('convert', '--input', join(FIX, 'malicious_os_system.pth'), '--out', join(work, 'evil'));
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        "dfd: checkpoint 'malicious_os_system.pth' references global 'os.system', which is not allowed: only tensor storages and plain containers are accepted " +
          '(re-save it in PyTorch as a plain state_dict: torch.save(model.state_dict(), path), or as .safetensors)\n',
      );
      expect(existsSync(marker)).toBe(false);
      expect(existsSync(join(work, 'evil'))).toBe(false);
    } finally {
      delete process.env.DFD_MARKER;
    }
  });

  it('imports a backbone-only safetensors file with a prefix map (kind backbone and --backbone-only)', async () => {
    const full = join(work, 'full');
    expect((await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', full)).code).toBe(0);
    const bbDir = join(work, 'bb');
    const r = await dfd('convert', '--input', join(FIX, 'cli_backbone.safetensors'), '--out', bbDir, '--kind', 'backbone', '--prefix-map', 'backbone.=efe.', '--json');
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.format).toBe('safetensors');
    expect(res.config).toMatchObject({ width: 0.0625, layout: 'ddl' });
    expect(res.ignored.filter((k: string) => !k.endsWith('.num_batches_tracked'))).toEqual(['fc.weight', 'fc.bias']);
    const head = join(work, 'net-from-bb');
    const h = await dfd('convert', '--input', join(FIX, 'cli_backbone.safetensors'), '--out', head, '--backbone-only', '--variant', 'att', '--prefix-map', 'backbone.=efe.', '--seed', '4');
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/ignored 19 \(17 num_batches_tracked; fc\.weight, fc\.bias\)/);
    const [a, b, c] = await Promise.all([stateOf(full), stateOf(bbDir), stateOf(head)]);
    const efeKeys = [...a.keys()].filter((k) => k.startsWith('efe.'));
    expect(efeKeys.length).toBeGreaterThan(50);
    expect([...b.keys()]).toEqual(efeKeys);
    for (const k of efeKeys) {
      expect(b.get(k), k).toEqual(a.get(k));
      expect(c.get(k), k).toEqual(a.get(k));
    }
    // Heads keep their seeded initialisation, not the full checkpoint's values.
    expect(c.get('classifier.weight')).not.toEqual(a.get('classifier.weight'));
  });

  it('says what is wrong with the options or the file', async () => {
    const e = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', join(work, 'e'), '--kind', 'eife');
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/^dfd: checkpoint 'cli_dfdnet\.pth': no embed\.weight: not an EIFE checkpoint/);
    const f = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', join(work, 'f'), '--kind', 'eife', '--backbone-only');
    expect(f.stderr).toMatch(/has no EIFE heads to read the factors from; pass them with --factors/);
    const g = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', join(work, 'g'), '--kind', 'eife', '--backbone-only', '--factors', 'id:5,pose:3', '--json');
    expect(g.code, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout).config).toMatchObject({ factors: [{ name: 'id', classes: 5 }, { name: 'pose', classes: 3 }], width: 0.0625 });
    const k = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', join(work, 'k'), '--kind', 'resnet');
    expect(k.stderr).toMatch(/--kind resnet: use dfd-net, eife or backbone/);
    const n = await dfd('convert', '--input', join(work, 'missing.pth'), '--out', join(work, 'n'));
    expect(n.stderr).toMatch(/^dfd: --input .*missing\.pth: cannot read the file/);
    const p = await dfd('convert', '--input', join(FIX, 'cli_backbone.safetensors'), '--out', join(work, 'p'), '--kind', 'backbone');
    expect(p.stderr).toMatch(/no EFE stem weight .* map the backbone's prefix with a prefix map \(e\.g\. backbone\.=efe\. or =efe\.\)/);
  });
});
