import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkImageHeaders } from './check.js';
import { DatasetFormatError, ImageDecodeError } from './errors.js';
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
