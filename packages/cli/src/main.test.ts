import { describe, expect, it } from 'vitest';
import { explainRuntimeError } from './main.js';
import { runCli } from './test-utils/run-cli.js';

describe('dfd CLI shell', () => {
  it('--help lists the commands and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: dfd [options] [command]');
    expect(r.stdout).toMatch(/\binfo\b.*backends/);
  });

  it('every command has its own help', async () => {
    const r = await runCli(['info', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: dfd info [options]');
    expect(r.stdout).toContain('--json');
  });

  it('an unknown command is a usage error with exit code 1', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  it('info --json reports versions and all five backends with reasons', async () => {
    const r = await runCli(['info', '--json']);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.tfjsCore).toMatch(/^4\.\d+\.\d+$/);
    expect(info.node).toBe(process.versions.node);
    const byName = Object.fromEntries(info.backends.map((b: { name: string }) => [b.name, b]));
    expect(Object.keys(byName).sort()).toEqual(['cpu', 'tensorflow', 'tensorflow-gpu', 'wasm', 'webgpu']);
    expect(byName.cpu.available).toBe(true);
    expect(byName.wasm.available).toBe(true);
    // tfjs-node cannot be installed on these machines: the row must say what to install.
    if (!byName.tensorflow.available) expect(byName.tensorflow.reason).toContain('@tensorflow/tfjs-node');
    if (!byName['tensorflow-gpu'].available) expect(byName['tensorflow-gpu'].reason).toMatch(/CUDA 11\.2.*cuDNN 8\.1/);
  });

  it('info prints a human table', async () => {
    const r = await runCli(['info']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^dfd \d+\.\d+\.\d+ +\(node /);
    expect(r.stdout).toMatch(/✓ cpu/);
    // It says what the default backend would be (issue 27 item 6), and --json carries it.
    expect(r.stdout).toMatch(/^auto \(every command's default --backend\) picks (tensorflow-gpu|tensorflow|wasm|cpu): the first available of tensorflow-gpu > tensorflow > wasm > cpu/m);
  });

  it('autoPick: the first available backend in auto order, webgpu never in Node', async () => {
    const { autoPick } = await import('./commands/info.js');
    const b = (name: string, available: boolean) => ({ name, available });
    expect(autoPick([b('tensorflow-gpu', false), b('tensorflow', false), b('webgpu', true), b('wasm', true), b('cpu', true)])).toBe('wasm');
    expect(autoPick([b('tensorflow', true), b('wasm', true)])).toBe('tensorflow');
    expect(autoPick([b('cpu', false)])).toBeNull();
  });

  it('the backend line before a command is short; DFD_VERBOSE=1 gives the whole reason', async () => {
    const { backendLine } = await import('./commands/train.js');
    const used = { name: 'wasm', reason: `auto picked wasm: the fastest backend that works here (${'x'.repeat(400)})` };
    expect(backendLine(used, {})).toBe('dfd: tfjs backend wasm (auto; DFD_VERBOSE=1 says more)\n');
    expect(backendLine(used, { DFD_VERBOSE: '1' })).toContain('x'.repeat(400));
  });

  it('a bad --target is reported by its flag, before any backend is loaded', async () => {
    const r = await runCli(['train', '--source', 'synthetic:studio', '--target', 'wild', '--out', '/tmp/dfd-never-written', '--variant', 'base']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('dfd: --target wild: expected NAME=SPEC, e.g. --target wild=synthetic:wild or --target raf=rafdb:/data/RAF-DB (NAME is the report\'s column)\n');
  });

  it('explains a wasm abort as the 4 GB heap running out and says what to change', () => {
    const hint = explainRuntimeError(new WebAssembly.RuntimeError('Aborted(OOM). Build with -sASSERTIONS for more info.'));
    expect(hint).toMatch(/^the wasm backend ran out of memory \(Aborted\(OOM\)\): its heap is limited to 4 GB/);
    expect(hint).toMatch(/--micro-batch 32/);
    expect(hint).toMatch(/--resume/);
    expect(explainRuntimeError(new TypeError('x is undefined'))).toBeNull();
  });

  it('turns a raw file-system error into one line naming the path and the cause (issue 17)', () => {
    const fsError = (code: string, syscall: string, path: string) => Object.assign(new Error(`${code}: raw, ${syscall} '${path}'`), { code, syscall, path, errno: -1 });
    expect(explainRuntimeError(fsError('ENOSPC', 'write', '/data/run/model/weights.bin'))).toBe('cannot write /data/run/model/weights.bin: no space left on the device (ENOSPC)');
    expect(explainRuntimeError(fsError('EROFS', 'open', '/mnt/ro/run/config.json'))).toBe('cannot open /mnt/ro/run/config.json: the file system is read-only (EROFS)');
    expect(explainRuntimeError(fsError('EACCES', 'mkdir', '/root/x'))).toBe('cannot mkdir /root/x: permission denied (EACCES)');
    expect(explainRuntimeError(fsError('ENOTDIR', 'mkdir', '/a/file/run'))).toBe('cannot mkdir /a/file/run: a part of the path is a file, not a folder (ENOTDIR)');
  });
});
