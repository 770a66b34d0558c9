import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkImageHeaders } from './check.js';
import { DatasetFormatError, DatasetSpecError, ImageDecodeError } from './errors.js';
import { escapeSpecLocation, parseSpec, unescapeSpecLocation } from './spec.js';
import { MAX_LABEL_LINE_CHARS, readLines } from './formats/fsutil.js';
import { MAX_DECODED_PIXELS, createNodeDatasetRegistry, decodeImageFile } from './node.js';
import { tempDir, writeImage, writeText } from './test-utils/fixtures.js';

let dir = '';
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('dfd-inputs-')));
afterEach(async () => cleanup());

/** A PNG whose header claims width x height (one tiny IDAT): enough for a header check, not a real image. */
function pngClaiming(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]);
}

describe('hostile input files (issue 24)', () => {
  it('a FIFO named *.jpg is refused at once by the decoder and the header check, not waited on (case 2)', async () => {
    await writeImage(join(dir, 'happy', 'a.jpg'));
    const fifo = join(dir, 'happy', 'b.jpg');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    const err = await decodeImageFile(fifo).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toMatch(/b\.jpg: cannot decode image \(image is a named pipe \(FIFO\), not a regular file/);
    const ds = await createNodeDatasetRegistry().resolve(`folder:${dir}`);
    const r = await checkImageHeaders(ds.splits.train!);
    expect(r.problems.map((b) => [b.file, b.reason])).toEqual([[fifo, 'not a regular file']]);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('an image whose header claims more than the decoded-pixel cap is refused before decoding (poorer message: 16000x16000 PNG)', async () => {
    const big = join(dir, 'huge.png');
    await writeFile(big, pngClaiming(16000, 16000));
    const err = await decodeImageFile(big).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toContain(`its header says 16000x16000 = 256,000,000 pixels, more than the ${MAX_DECODED_PIXELS.toLocaleString('en-US')} (8192x8192) dfd decodes`);
  });

  it('a label-file line over the cap is an error naming the file and line, read no further (case 4)', async () => {
    const file = join(dir, 'list.txt');
    await writeText(file, `a.jpg 1\r\nb.jpg 2\r${'x'.repeat(MAX_LABEL_LINE_CHARS + 10)}\nc.jpg 3\n`);
    const seen: Array<[number, string]> = [];
    const err = await (async () => {
      for await (const { line, text } of readLines(file)) seen.push([line, text]);
    })().catch((e: unknown) => e);
    expect(seen).toEqual([[1, 'a.jpg 1'], [2, 'b.jpg 2']]);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as Error).message).toContain(`${file}, line 3`);
    expect((err as Error).message).toMatch(/at most 1,048,576 characters/);
    expect((err as Error).message.length).toBeLessThan(400);
    // Line endings as before: CRLF, lone CR, a last line without a newline, a BOM.
    await writeText(file, '\uFEFFone\r\ntwo\rthree\n\nfour');
    const lines: string[] = [];
    for await (const { text } of readLines(file)) lines.push(text);
    expect(lines).toEqual(['one', 'two', 'three', '', 'four']);
    // A FIFO as a label file is refused, not waited on.
    execFileSync('mkfifo', [join(dir, 'list.csv')]);
    await expect((async () => {
      for await (const l of readLines(join(dir, 'list.csv'))) void l;
    })()).rejects.toThrow(/named pipe \(FIFO\), not a regular file/);
  });
});

describe('spec locations and options (issue 24)', () => {
  it("a '?' in a folder name is written %3F; the literal path existing is said (case 11)", async () => {
    const ds = join(dir, 'ds?v2');
    await writeImage(join(ds, 'happy', 'a.jpg'));
    await writeImage(join(dir, 'ds', 'sad', 'b.jpg'));
    const reg = createNodeDatasetRegistry();
    // Escaped: the folder with the '?' is read.
    const escaped = await reg.resolve(`folder:${join(dir, 'ds%3Fv2')}`);
    expect(escaped.splits.train!.map((s) => s.id)).toEqual(['happy/a.jpg']);
    expect(parseSpec('folder:/x/ds%3fv2?links=follow')).toMatchObject({ location: '/x/ds?v2', options: { links: 'follow' } });
    expect(parseSpec('folder:/x/100%2525%20off')).toMatchObject({ location: '/x/100%25%20off' });
    expect(unescapeSpecLocation(escapeSpecLocation('/a?b%3F%25c%'))).toBe('/a?b%3F%25c%');
    // Unescaped: not silently /x/ds any more; the error says the literal path exists and how to write it.
    const err = await reg.resolve(`folder:${ds}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetSpecError);
    expect((err as Error).message).toContain(`unknown option 'v2' for plugin 'folder' (it reads split, links)`);
    expect((err as Error).message).toContain(`${ds} exists: if you meant that path, write its '?' as %3F (folder:${join(dir, 'ds%3Fv2')})`);
  });

  it('unknown spec options are an error naming the plugin and the options it reads (poorer message: ?splt=test)', async () => {
    await writeImage(join(dir, 'test', 'happy', 'a.jpg'));
    const reg = createNodeDatasetRegistry();
    await expect(reg.resolve(`folder:${dir}?splt=test`)).rejects.toThrow(/unknown option 'splt' for plugin 'folder' \(it reads split, links\)/);
    await expect(reg.resolve(`imagefolder:${dir}?splt=test`)).rejects.toThrow(/unknown option 'splt' for plugin 'imagefolder'/);
    await expect(reg.resolve(`sfew:${dir}?x=1&y=2`)).rejects.toThrow(/unknown options 'x', 'y' for plugin 'sfew' \(it reads none\)/);
    await expect(reg.resolve(`rafdb:${dir}?image=aligned`)).rejects.toThrow(/for plugin 'rafdb' \(it reads images, attributes\)/);
    expect((await reg.resolve(`folder:${dir}?split=test`)).splits.test!.length).toBe(1);
    // A plugin that declares no option list (a user plugin, a wrapper) still sees every option.
    let seen: Record<string, string> = {};
    reg.register({ name: 'mine', labels: { expression: true, factors: [] }, async load(_l, o) {
      seen = { ...o };
      return { name: 'mine', plugin: 'mine', splits: { train: [{ id: 'x', image: { kind: 'pixels', width: 1, height: 1, channels: 1, data: new Uint8Array(1) }, expression: 0 }] }, hasExpression: true, warnings: [] };
    } });
    await reg.resolve('mine:x?anything=1');
    expect(seen).toEqual({ anything: '1' });
  });
});
