import { resolve } from 'node:path';
import { DatasetFormatError } from '../errors.js';
import type { DatasetPlugin, FactorSpec, Sample } from '../types.js';
import { findChild, isDir, listDir, relId } from './fsutil.js';

/** The 15 Multi-PIE cameras, in the order of the `pose` factor (yaw -90 .. +90, then the two overhead cameras). */
export const MULTIPIE_CAMERAS = ['110', '120', '090', '080', '130', '140', '051', '050', '041', '190', '200', '010', '240', '081', '191'];

// (session, recording) -> expression in Multi-PIE: neutral, smile, surprise, squint, disgust, scream.
const MULTIPIE_EXPRESSIONS: Record<string, number | undefined> = {
  '01_01': 6, '01_02': 3,
  '02_01': 6, '02_02': 0, // 02_03 squint: no canonical class
  '03_01': 6, '03_02': 3, '03_03': 2,
  '04_01': 6, '04_02': 6, // 04_03 scream: no canonical class
};

const NAME_RE = /^(\d{3})_(\d{2})_(\d{2})_(\d{3})_(\d{2})\.(png|jpg)$/i;

/**
 * `multipie:<dir>`: Multi-PIE `sessionXX/multiview/SSS/rr/CCC_C/SSS_ss_rr_ccc_ff.png`: factors
 * identity (subjects found, sorted), pose (15 cameras), illumination (20 flashes); expression
 * where the recording has a canonical one (neutral, smile, surprise, disgust). File names must
 * agree with their folders.
 */
export const multipiePlugin: DatasetPlugin = {
  name: 'multipie',
  options: [],
  description: 'Multi-PIE sessionXX/multiview/SSS/rr/CCC_C/SSS_ss_rr_ccc_ff.png: identity, pose (15), illumination (20)',
  labels: { expression: true, factors: [{ name: 'identity', classes: 337 }, { name: 'pose', classes: 15 }, { name: 'illumination', classes: 20 }] },
  async validate(location) {
    const root = resolve(location);
    if (!(await isDir(root))) return [{ severity: 'error', file: root, message: `folder not found: ${root}` }];
    const sessions = (await listDir(root)).filter((e) => e.dir && /^session\d{2}$/i.test(e.name));
    return sessions.length ? [] : [{ severity: 'error', file: root, message: `no sessionXX/ folders in ${root}` }];
  },
  async load(location, _options, ctx) {
    let root = resolve(location);
    const data = await findChild(root, ['data']);
    if (data && !(await findChild(root, ['session01']))) root = data;
    const found: Array<{ path: string; subject: string; camera: number; flash: number; expression?: number }> = [];
    let skipped = 0;
    for (const s of (await listDir(root)).filter((e) => e.dir && /^session\d{2}$/i.test(e.name))) {
      const session = s.name.slice(-2);
      const mv = await findChild(s.path, ['multiview']);
      if (!mv) throw new DatasetFormatError({ file: s.path, expected: 'a multiview/ folder' }, 'folder not found');
      for (const subj of (await listDir(mv)).filter((e) => e.dir)) {
        for (const rec of (await listDir(subj.path)).filter((e) => e.dir)) {
          for (const cam of (await listDir(rec.path)).filter((e) => e.dir)) {
            const camCode = cam.name.replace('_', '');
            for (const f of await listDir(cam.path)) {
              if (f.dir) continue;
              const m = NAME_RE.exec(f.name);
              if (!m) {
                skipped++;
                continue;
              }
              const [, sss, ss, rr, ccc, ff] = m as unknown as [string, string, string, string, string, string];
              const expectedName = `${subj.name}_${session}_${rec.name}_${camCode}_ff`;
              if (sss !== subj.name || ss !== session || rr !== rec.name || ccc !== camCode) {
                throw new DatasetFormatError({ file: f.path, expected: `a name like ${expectedName}.png matching its folders` }, `file name disagrees with its folders`);
              }
              const camera = MULTIPIE_CAMERAS.indexOf(ccc);
              if (camera < 0) throw new DatasetFormatError({ file: f.path, field: 'camera', expected: `one of ${MULTIPIE_CAMERAS.join(', ')}` }, `camera ${ccc}`);
              const flash = Number(ff);
              if (flash > 19) throw new DatasetFormatError({ file: f.path, field: 'flash', expected: '00..19' }, `flash ${ff}`);
              found.push({ path: f.path, subject: sss, camera, flash, expression: MULTIPIE_EXPRESSIONS[`${session}_${rr}`] });
            }
          }
        }
      }
    }
    if (skipped > 0) ctx.warn({ kind: 'bad-file-name', message: `multipie: skipped ${skipped} file(s) not named SSS_ss_rr_ccc_ff.png`, count: skipped, file: root });
    const subjects = [...new Set(found.map((f) => f.subject))].sort();
    const index = new Map(subjects.map((s, i) => [s, i]));
    const samples: Sample[] = found.map((f) => ({
      id: relId(root, f.path),
      image: { kind: 'file', path: f.path },
      ...(f.expression !== undefined ? { expression: f.expression } : {}),
      factors: { identity: index.get(f.subject)!, pose: f.camera, illumination: f.flash },
    }));
    const factors: FactorSpec[] = [
      { name: 'identity', classes: subjects.length, classNames: subjects },
      { name: 'pose', classes: 15, classNames: MULTIPIE_CAMERAS },
      { name: 'illumination', classes: 20 },
    ];
    return { name: `multipie:${location}`, plugin: 'multipie', splits: { train: samples }, hasExpression: true, factors, warnings: [] };
  },
};
