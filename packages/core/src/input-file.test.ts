import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputFileError, openRegularFile, readRegularFile, readRegularFileSync } from './node.js';

const dir = mkdtempSync(join(tmpdir(), 'dfd-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the guarded input reader (issue 24, case 2)', () => {
  it('reads regular files (also through a symbolic link) and refuses FIFOs, devices and folders at once, without blocking', async () => {
    writeFileSync(join(dir, 'a.bin'), 'hello');
    symlinkSync(join(dir, 'a.bin'), join(dir, 'link.bin'));
    expect((await readRegularFile(join(dir, 'link.bin'))).toString()).toBe('hello');
    expect(readRegularFileSync(join(dir, 'a.bin')).toString()).toBe('hello');
    execFileSync('mkfifo', [join(dir, 'pipe.jpg')]);
    symlinkSync('/dev/zero', join(dir, 'zero.pth'));
    mkdirSync(join(dir, 'folder.png'));
    const cases: Array<[string, RegExp]> = [
      ['pipe.jpg', /is a named pipe \(FIFO\), not a regular file/],
      ['zero.pth', /is a character device, not a regular file/],
      ['folder.png', /is a folder, not a regular file/],
    ];
    for (const [name, msg] of cases) {
      for (const read of [readRegularFile, async (p: string) => readRegularFileSync(p), openRegularFile]) {
        const err = await read(join(dir, name), { what: 'image' }).catch((e: unknown) => e);
        expect(err, name).toBeInstanceOf(InputFileError);
        expect((err as InputFileError).code).toBe('E_INPUT_FILE');
        expect((err as InputFileError).reason).toBe('not-regular');
        expect((err as Error).message, name).toMatch(msg);
        expect((err as Error).message.startsWith(join(dir, name))).toBe(true);
      }
    }
    const missing = await readRegularFile(join(dir, 'nope')).catch((e: unknown) => e);
    expect((missing as InputFileError).reason).toBe('unreadable');
    expect(String(missing)).toMatch(/cannot open \(ENOENT\)/);
  });

  it('refuses a file over the size cap before reading it', async () => {
    writeFileSync(join(dir, 'big.bin'), new Uint8Array(2048));
    const err = await readRegularFile(join(dir, 'big.bin'), { maxBytes: 1024, what: 'label file' }).catch((e: unknown) => e);
    expect((err as InputFileError).reason).toBe('too-large');
    expect(String(err)).toMatch(/label file is 2048 bytes, more than the 1024 bytes dfd reads for it/);
    expect((await readRegularFile(join(dir, 'big.bin'), { maxBytes: 2048 })).length).toBe(2048);
  });
});
