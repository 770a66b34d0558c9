import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createNodeDatasetRegistry, MULTIPIE_CAMERAS } from '../node.js';
import { tempDir, writeImage, writeText } from '../test-utils/fixtures.js';

let dir = '';
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());
const reg = createNodeDatasetRegistry();

/** sessionXX/multiview/SSS/rr/CCC_C/SSS_ss_rr_ccc_ff.png */
const mpPath = (session: string, subject: string, rec: string, camFolder: string, flash: string) =>
  join(`session${session}`, 'multiview', subject, rec, camFolder, `${subject}_${session}_${rec}_${camFolder.replace('_', '')}_${flash}.png`);

describe('multipie plugin', () => {
  it('parses identity, pose (camera), illumination (flash) and expression by session/recording', async () => {
    const files = [
      mpPath('01', '001', '01', '05_1', '07'), // neutral, frontal camera
      mpPath('01', '001', '02', '11_0', '00'), // smile, camera 110 (pose 0)
      mpPath('02', '002', '02', '19_1', '19'), // surprise, overhead camera 191 (pose 14)
      mpPath('02', '346', '03', '05_0', '03'), // squint: no canonical expression
      mpPath('03', '002', '03', '04_1', '12'), // disgust
    ];
    for (const f of files) await writeImage(join(dir, f), { channels: 1 });
    await writeText(join(dir, 'session01', 'multiview', '001', '01', '05_1', 'Thumbs.db'), 'x');
    const ds = await reg.resolve(`multipie:${dir}`);
    const got = ds.splits.train!.map((s) => [s.expression, s.factors]);
    expect(got).toEqual([
      [6, { identity: 0, pose: MULTIPIE_CAMERAS.indexOf('051'), illumination: 7 }],
      [3, { identity: 0, pose: 0, illumination: 0 }],
      [0, { identity: 1, pose: 14, illumination: 19 }],
      [undefined, { identity: 2, pose: MULTIPIE_CAMERAS.indexOf('050'), illumination: 3 }],
      [2, { identity: 1, pose: MULTIPIE_CAMERAS.indexOf('041'), illumination: 12 }],
    ]);
    expect(MULTIPIE_CAMERAS).toHaveLength(15);
    expect(ds.factors!.map((f) => [f.name, f.classes])).toEqual([['identity', 3], ['pose', 15], ['illumination', 20]]);
    expect(ds.warnings).toEqual([expect.objectContaining({ kind: 'bad-file-name', count: 1 })]);
  });

  it('rejects names that disagree with their folders, unknown cameras and flashes > 19', async () => {
    const bad = join(dir, 'session01', 'multiview', '001', '01', '05_1', '001_02_01_051_07.png');
    await writeImage(bad);
    await expect(reg.resolve(`multipie:${dir}`)).rejects.toThrow(/001_02_01_051_07.png: file name disagrees with its folders/);
    await cleanup();
    ({ dir, cleanup } = await (await import('../test-utils/fixtures.js')).tempDir());
    await writeImage(join(dir, mpPath('01', '001', '01', '06_0', '07')));
    await expect(reg.resolve(`multipie:${dir}`)).rejects.toThrow(/field 'camera'.*camera 060/);
    await cleanup();
    ({ dir, cleanup } = await (await import('../test-utils/fixtures.js')).tempDir());
    await writeImage(join(dir, mpPath('01', '001', '01', '05_1', '20')));
    await expect(reg.resolve(`multipie:${dir}`)).rejects.toThrow(/field 'flash'.*flash 20/);
    await expect(reg.resolve(`multipie:${join(dir, 'session01')}`)).rejects.toThrow(/no sessionXX/);
  });
});
