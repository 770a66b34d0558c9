import { basename, resolve } from 'node:path';
import { DatasetFormatError } from '../errors.js';
import { ageGroup } from '../labels.js';
import { choiceOption } from '../spec.js';
import type { Dataset, DatasetPlugin, FactorSpec, Sample } from '../types.js';
import { dirIssue, findChild, listDir, listImages, readClassFolders, relId, requireDir } from './fsutil.js';

type Splits = Dataset['splits'];

function dataset(name: string, plugin: string, splits: Splits, factors?: FactorSpec[], hasExpression = true): Dataset {
  return { name: `${plugin}:${name}`, plugin, splits, hasExpression, factors, warnings: [] };
}

const SPLIT_NAMES: Record<string, 'train' | 'val' | 'test'> = {
  train: 'train',
  training: 'train',
  val: 'val',
  valid: 'val',
  validation: 'val',
  test: 'test',
  testing: 'test',
};

/**
 * `folder:<dir>`: `train/<class>/`, `val|valid|validation/<class>/`, `test/<class>/`, or `<dir>`
 * itself holding class folders (then option `split=train|val|test`, default train). Class names
 * by synonyms (angry/anger, sad/sadness, ...); unknown classes (contempt) skipped and counted.
 * Symbolic links: loops are skipped, links out of `<dir>` only followed with `?links=follow`.
 */
export const folderPlugin: DatasetPlugin = {
  name: 'folder',
  options: ['split', 'links'],
  description: 'class folders: train/<class>/, test/<class>/ (val/valid too) or one folder of classes (?split=train|val|test, ?links=follow to follow symlinks out of the folder)',
  labels: { expression: true, factors: [] },
  validate: async (location) => dirIssue(resolve(location), 'a folder of class folders or train/ and test/ folders'),
  async load(location, options, ctx) {
    const root = resolve(location);
    await requireDir(root, 'a folder of class folders or train/ and test/ folders');
    const split = choiceOption(options, 'split', ['train', 'val', 'test'], 'train');
    const links = choiceOption(options, 'links', ['inside', 'follow'], 'inside');
    const splits: Splits = {};
    const subs = (await listDir(root)).filter((e) => e.dir && SPLIT_NAMES[e.name.toLowerCase()]);
    if (subs.length > 0) {
      for (const s of subs) {
        const name = SPLIT_NAMES[s.name.toLowerCase()]!;
        if (splits[name]) throw new DatasetFormatError({ file: s.path, expected: 'one folder per split' }, `a second folder for split '${name}'`);
        splits[name] = await readClassFolders(s.path, root, ctx, 'folder', links);
      }
    } else {
      splits[split] = await readClassFolders(root, root, ctx, 'folder', links);
    }
    return dataset(location, 'folder', splits);
  },
};

/** `sfew:<dir>`: SFEW 2.0, `Train/<Class>/` and `Val/<Class>/` (wrapper folders such as Train_Aligned_Faces are descended); Val becomes `test` (SFEW's test labels are not public). */
export const sfewPlugin: DatasetPlugin = {
  name: 'sfew',
  options: [],
  description: 'SFEW 2.0: Train/<Class>/, Val/<Class>/ (Val is the test split)',
  labels: { expression: true, factors: [] },
  async validate(location) {
    const root = resolve(location);
    const issues = await dirIssue(root, 'the SFEW 2.0 folder with Train/ and Val/');
    if (issues.length) return issues;
    const missing = [];
    for (const s of ['Train', 'Val']) if (!(await findChild(root, [s]))) missing.push(s);
    return missing.map((m) => ({ severity: 'error' as const, file: root, message: `SFEW folder ${root} has no ${m}/ folder` }));
  },
  async load(location, _options, ctx) {
    const root = resolve(location);
    await requireDir(root, 'the SFEW 2.0 folder with Train/ and Val/');
    const train = await findChild(root, ['Train']);
    const val = await findChild(root, ['Val']);
    if (!train || !val) throw new DatasetFormatError({ file: root, expected: 'Train/ and Val/ folders' }, 'SFEW split folder missing');
    return dataset(location, 'sfew', { train: await readClassFolders(train, root, ctx, 'sfew'), test: await readClassFolders(val, root, ctx, 'sfew') });
  },
};

/** `mma:<dir>`: MMA FACIAL EXPRESSION, `train/`, `valid/`, `test/` class folders (a single wrapper such as MMAFEDB/ is descended). */
export const mmaPlugin: DatasetPlugin = {
  name: 'mma',
  options: [],
  description: 'MMA facial expression: train/, valid/, test/ of class folders',
  labels: { expression: true, factors: [] },
  validate: async (location) => dirIssue(resolve(location), 'the MMA folder with train/, valid/, test/'),
  async load(location, _options, ctx) {
    let root = resolve(location);
    await requireDir(root, 'the MMA folder with train/, valid/, test/');
    if (!(await findChild(root, ['train'])) && (await findChild(root, ['MMAFEDB']))) root = (await findChild(root, ['MMAFEDB']))!;
    const splits: Splits = {};
    for (const [folder, split] of [['train', 'train'], ['valid', 'val'], ['test', 'test']] as const) {
      const dir = await findChild(root, [folder, ...(folder === 'valid' ? ['val', 'validation'] : [])]);
      if (!dir) throw new DatasetFormatError({ file: root, expected: 'train/, valid/ and test/ folders' }, `MMA folder has no ${folder}/`);
      splits[split] = await readClassFolders(dir, root, ctx, 'mma');
    }
    return dataset(location, 'mma', splits);
  },
};

/** `identity:<dir>` (alias `orl`): one folder per person (ORL `sN/K.png`); factor `identity` in natural folder order. */
export const identityFolderPlugin: DatasetPlugin = {
  name: 'identity',
  options: [],
  description: 'one folder per identity (ORL sN/K.png): factor identity; all in train',
  labels: { expression: false, factors: [{ name: 'identity', classes: 0 }] },
  validate: async (location) => dirIssue(resolve(location), 'a folder with one sub-folder per person'),
  async load(location, _options, ctx) {
    const root = resolve(location);
    await requireDir(root, 'a folder with one sub-folder per person');
    const people = (await listDir(root)).filter((e) => e.dir);
    if (people.length === 0) throw new DatasetFormatError({ file: root, expected: 'one sub-folder per person (s1/, s2/, ...)' }, 'no sub-folders');
    const samples: Sample[] = [];
    const names: string[] = [];
    for (const p of people) {
      const files = await listImages(p.path, root, ctx, 'identity');
      if (files.length === 0) {
        ctx.warn({ kind: 'empty-identity', message: `identity: folder '${p.name}' has no images; skipped`, count: 1, file: p.path });
        continue;
      }
      const identity = names.length;
      names.push(p.name);
      for (const f of files) samples.push({ id: relId(root, f), image: { kind: 'file', path: f }, factors: { identity } });
    }
    return dataset(location, this.name, { train: samples }, [{ name: 'identity', classes: names.length, classNames: names }], false);
  },
};

/** `orl:<dir>`: the identity-folder layout under the ORL name. */
export const orlPlugin: DatasetPlugin = { ...identityFolderPlugin, name: 'orl', description: 'ORL / AT&T faces (sN/K.png): same as identity:' };

const UTK_RE = /^(\d+)_(\d+)_(\d+)_(\d+)\.jpg(?:\.chip\.jpg)?$/i;

/** UTKFace factors: age group (RAF-DB's 5 groups), gender, race. */
export const UTKFACE_FACTORS: FactorSpec[] = [
  { name: 'age', classes: 5, classNames: ['0-3', '4-19', '20-39', '40-69', '70+'] },
  { name: 'gender', classes: 2, classNames: ['male', 'female'] },
  { name: 'race', classes: 5, classNames: ['white', 'black', 'asian', 'indian', 'other'] },
];

/**
 * `utkface:<dir>`: `age_gender_race_date.jpg.chip.jpg` files (in `<dir>`, `<dir>/images` or
 * deeper). Names that do not parse (UTKFace ships a few without race) are skipped and counted.
 */
export const utkfacePlugin: DatasetPlugin = {
  name: 'utkface',
  options: [],
  description: 'UTKFace age_gender_race_date.jpg.chip.jpg: factors age (5 groups), gender, race; all in train',
  labels: { expression: false, factors: UTKFACE_FACTORS },
  validate: async (location) => dirIssue(resolve(location), 'the UTKFace image folder'),
  async load(location, _options, ctx) {
    const root = resolve(location);
    await requireDir(root, 'the UTKFace image folder');
    const files = await listImages(root, root, ctx, 'utkface');
    const samples: Sample[] = [];
    const bad: string[] = [];
    for (const f of files) {
      const m = UTK_RE.exec(basename(f));
      const age = m ? Number(m[1]) : NaN;
      const gender = m ? Number(m[2]) : NaN;
      const race = m ? Number(m[3]) : NaN;
      if (!m || age > 120 || gender > 1 || race > 4) {
        bad.push(basename(f));
        continue;
      }
      samples.push({ id: relId(root, f), image: { kind: 'file', path: f }, factors: { age: ageGroup(age), gender, race } });
    }
    if (bad.length > 0) {
      ctx.warn({
        kind: 'bad-file-name',
        message: `utkface: skipped ${bad.length} file(s) whose name is not age_gender_race_date.jpg[.chip.jpg] with gender 0-1 and race 0-4 (e.g. ${bad.slice(0, 3).join(', ')})`,
        count: bad.length,
        file: root,
      });
    }
    return dataset(location, 'utkface', { train: samples }, UTKFACE_FACTORS, false);
  },
};

