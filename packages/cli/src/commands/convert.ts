import type { Command } from 'commander';
import { basename, extname, resolve } from 'node:path';
import { DfdError } from '@dfd/core';
import { InputFileError, readRegularFile } from '@dfd/core/node';
import { useBackend } from '@dfd/backends';
import {
  DFD_VARIANTS,
  TorchTensor,
  createBackboneModel,
  createDfdNet,
  createEife,
  inferBackbone,
  inferDfdNetConfig,
  inferEifeConfig,
  loadStateDictInto,
  parsePrefixMap,
  parseSafetensors,
  readTorchArchive,
  remapKeys,
  unwrapStateDict,
  type CheckpointKind,
  type DfdModel,
  type DfdVariant,
  type StateDict,
} from '@dfd/model';
import { checkModelDirReplaceable, saveModelDir } from '@dfd/model/node';

/** Largest checkpoint `dfd convert` reads (4 GiB; a DFD-Net at width 1 is about 100 MB). */
export const MAX_CHECKPOINT_BYTES = 4 * 1024 ** 3;

/** Options of {@link convertCheckpoint} (the flags of `dfd convert`). */
export interface ConvertOptions {
  /** A `torch.save` file (.pth/.pt/.ckpt/.bin) or a `.safetensors` file. */
  input: string;
  /** Model folder to write (model.json + weights.bin). */
  out: string;
  kind: CheckpointKind;
  /** DFD-Net variant; default: inferred from the keys present. */
  variant?: DfdVariant;
  /** Width multiplier; default: inferred from the EFE stem. */
  width?: number;
  inputSize?: number;
  layout?: 'ddl' | 'torchvision';
  /** EIFE factors `name:classes`; default: inferred from `heads.<name>.weight`. */
  factors?: Array<{ name: string; classes: number }>;
  /** `old=new` key prefix rules, applied before anything else. */
  prefixMap?: string[];
  /** Dotted path to the state dict inside a wrapper checkpoint (default: searched). */
  entry?: string;
  /** Load only `efe.*` (other weights keep their seeded initialisation). Implied by kind `backbone`. */
  backboneOnly?: boolean;
  /** Seed for whatever the checkpoint does not provide. */
  seed?: number;
  /**
   * Replace `out` even when it holds files dfd did not write (default false: only a missing or
   * empty folder or a dfd model folder is replaced; a regular file never is).
   */
  overwrite?: boolean;
}

/** What `dfd convert` did. */
export interface ConvertResult {
  input: string;
  format: 'torch' | 'safetensors';
  out: string;
  kind: CheckpointKind;
  config: unknown;
  /** Where the weights sat inside the checkpoint (e.g. `state_dict`), and wrapper prefixes removed. */
  unwrapped: { path: string[]; strippedPrefixes: string[] };
  loaded: number;
  ignored: string[];
  parameters: number;
}

function readStateDict(bytes: Uint8Array, file: string, entry: string | undefined): { sd: StateDict; format: ConvertResult['format']; unwrapped: ConvertResult['unwrapped'] } {
  const name = basename(file);
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  if (extname(file).toLowerCase() === '.safetensors' || (!isZip && bytes[0] !== 0x80)) {
    if (entry) throw new DfdError('E_CONVERT_OPTION', `--entry applies to torch.save checkpoints; ${name} is a safetensors file (flat by design)`);
    const sd = parseSafetensors(bytes, { name, stripWrapperPrefixes: false });
    const r = unwrapStateDict(sd, { name }, () => true, (v) => v as never);
    return { sd: r.stateDict, format: 'safetensors', unwrapped: { path: [], strippedPrefixes: r.strippedPrefixes } };
  }
  const archive = readTorchArchive(bytes, name);
  const r = unwrapStateDict(archive.root, { name, entry }, (v) => v instanceof TorchTensor, (v) => archive.materialise(v as TorchTensor));
  return { sd: r.stateDict, format: 'torch', unwrapped: { path: r.path, strippedPrefixes: r.strippedPrefixes } };
}

/** Reads a PyTorch checkpoint, builds the matching model, loads the weights (checked) and saves a model folder. */
export async function convertCheckpoint(opts: ConvertOptions): Promise<ConvertResult> {
  // Refuse an --out holding a user's files before any work (saveModelDir checks again).
  await checkModelDirReplaceable(resolve(opts.out), { overwrite: opts.overwrite === true, overwriteFlag: '--overwrite' });
  let bytes: Uint8Array;
  try {
    // Regular files only: a FIFO or a link to /dev/zero is refused at once instead of read forever.
    bytes = new Uint8Array(await readRegularFile(opts.input, { what: 'the checkpoint', maxBytes: MAX_CHECKPOINT_BYTES }));
  } catch (err) {
    const cause = err instanceof InputFileError && err.reason === 'unreadable' ? err.cause : err;
    const why = err instanceof InputFileError && err.reason !== 'unreadable' ? err.message.slice(err.path.length + 2) : `cannot read the file (${(cause as Error).message})`;
    throw new DfdError('E_CONVERT_INPUT', `--input ${opts.input}: ${why}`, { cause: err });
  }
  const name = basename(opts.input);
  const { sd: raw, format, unwrapped } = readStateDict(bytes, opts.input, opts.entry);
  const sd = remapKeys(raw, opts.prefixMap ? parsePrefixMap(opts.prefixMap) : undefined);
  const backboneOnly = opts.kind === 'backbone' || opts.backboneOnly === true;
  const seed = opts.seed ?? 0;
  const backbone = inferBackbone(sd, name);
  const width = opts.width ?? backbone.width;
  const layout = opts.layout ?? backbone.layout;
  const inputSize = opts.inputSize ?? 90;
  let model: DfdModel;
  if (opts.kind === 'dfd-net') {
    const inferred = backboneOnly ? undefined : inferDfdNetConfig(sd, name);
    model = createDfdNet({
      variant: opts.variant ?? inferred?.variant ?? 'att+eifp',
      width,
      layout,
      inputSize,
      seed,
      ...(inferred?.numClasses !== undefined ? { numClasses: inferred.numClasses } : {}),
      ...(inferred?.miDims ? { miDims: inferred.miDims, miHidden: inferred.miHidden } : {}),
    });
  } else if (opts.kind === 'eife') {
    if (!opts.factors && backboneOnly && !sd.has('embed.weight')) {
      throw new DfdError('E_CONVERT_OPTION', `--kind eife --backbone-only: ${name} has no EIFE heads to read the factors from; pass them with --factors, e.g. gender:3,race:3,age:5`);
    }
    const inferred = opts.factors ? undefined : inferEifeConfig(sd, name);
    const factors = opts.factors ?? inferred!.factors;
    model = createEife({ factors, width, layout, inputSize, seed, ...(inferred ? { embedDim: inferred.embedDim } : {}) });
  } else if (opts.kind === 'backbone') {
    model = createBackboneModel({ width, layout, inputSize, seed });
  } else {
    throw new DfdError('E_CONVERT_OPTION', `--kind ${String(opts.kind)}: use dfd-net, eife or backbone`);
  }
  try {
    const res = loadStateDictInto(model, sd, { backboneOnly, name });
    await saveModelDir(model, opts.out, { overwrite: opts.overwrite === true, overwriteFlag: '--overwrite' });
    return {
      input: opts.input,
      format,
      out: opts.out,
      kind: opts.kind,
      config: model.config,
      unwrapped,
      loaded: res.loaded.length,
      ignored: res.ignored,
      parameters: model.numParameters(),
    };
  } finally {
    model.dispose();
  }
}

function parseFactors(spec: string): Array<{ name: string; classes: number }> {
  return spec.split(',').map((part) => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*):(\d+)$/.exec(part.trim());
    if (!m) throw new DfdError('E_CONVERT_OPTION', `--factors '${spec}': write name:classes pairs separated by commas, e.g. gender:3,race:3,age:5`);
    return { name: m[1]!, classes: Number(m[2]) };
  });
}

function positive(flag: string, v: string): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new DfdError('E_CONVERT_OPTION', `${flag} ${v}: must be a positive number`);
  return n;
}

/** `dfd convert`: PyTorch checkpoint (.pth / .safetensors) -> dfd model folder. */
export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert a PyTorch checkpoint (.pth via a restricted unpickler, or .safetensors) into a dfd model folder')
    .requiredOption('--input <file>', 'torch.save checkpoint (.pth/.pt/.ckpt) or .safetensors file')
    .requiredOption('--out <dir>', 'model folder to write (model.json + weights.bin)')
    .option('--kind <kind>', 'dfd-net | eife | backbone (backbone loads only efe.*)', 'dfd-net')
    .option('--variant <variant>', `DFD-Net variant: ${DFD_VARIANTS.join(' | ')} (default: inferred from the keys)`)
    .option('--width <w>', 'width multiplier, 1 = 64 base channels (default: inferred from efe stem)')
    .option('--input-size <n>', 'square input side', '90')
    .option('--layout <layout>', 'backbone layout ddl | torchvision (default: inferred)')
    .option('--factors <list>', 'EIFE factors name:classes,... (default: inferred from heads.*)')
    .option('--prefix-map <rule...>', 'rename key prefixes old=new before loading, e.g. backbone.=efe. or =efe. (add) or model.= (drop)')
    .option('--entry <path>', 'dotted path of the state dict inside the checkpoint (default: searched: state_dict, model, ...)')
    .option('--backbone-only', 'load only efe.* from the checkpoint; everything else keeps its seeded initialisation')
    .option('--seed <n>', 'initialisation seed for weights the checkpoint does not provide', '0')
    .option('--overwrite', 'replace --out even when it holds files dfd did not write (default: only an empty folder or a dfd model folder is replaced)')
    .option('--json', 'print a machine-readable summary')
    .action(async (o: Record<string, string | string[] | boolean | undefined>) => {
      const kind = o.kind as string;
      if (!['dfd-net', 'eife', 'backbone'].includes(kind)) throw new DfdError('E_CONVERT_OPTION', `--kind ${kind}: use dfd-net, eife or backbone`);
      if (o.variant !== undefined && !(DFD_VARIANTS as readonly string[]).includes(o.variant as string)) {
        throw new DfdError('E_CONVERT_OPTION', `--variant ${String(o.variant)}: use one of ${DFD_VARIANTS.join(', ')}`);
      }
      if (o.layout !== undefined && o.layout !== 'ddl' && o.layout !== 'torchvision') throw new DfdError('E_CONVERT_OPTION', `--layout ${String(o.layout)}: use ddl or torchvision`);
      await useBackend('cpu', { gradients: false });
      const res = await convertCheckpoint({
        input: o.input as string,
        out: o.out as string,
        kind: kind as CheckpointKind,
        variant: o.variant as DfdVariant | undefined,
        width: o.width !== undefined ? positive('--width', o.width as string) : undefined,
        inputSize: positive('--input-size', o.inputSize as string),
        layout: o.layout as 'ddl' | 'torchvision' | undefined,
        factors: o.factors !== undefined ? parseFactors(o.factors as string) : undefined,
        prefixMap: o.prefixMap as string[] | undefined,
        entry: o.entry as string | undefined,
        backboneOnly: o.backboneOnly === true,
        seed: Number(o.seed),
        overwrite: o.overwrite === true,
      });
      if (o.json) {
        process.stdout.write(JSON.stringify(res, null, 2) + '\n');
        return;
      }
      const where = res.unwrapped.path.length > 0 ? ` (weights under '${res.unwrapped.path.join('.')}')` : '';
      const stripped = res.unwrapped.strippedPrefixes.length > 0 ? `, stripped prefix ${res.unwrapped.strippedPrefixes.join(' ')}` : '';
      process.stdout.write(
        [
          `read ${res.input}: ${res.format} checkpoint${where}${stripped}`,
          `built ${res.kind} ${JSON.stringify(res.config)}`,
          `loaded ${res.loaded} tensors (${res.parameters.toLocaleString('en-US')} trainable parameters)` +
            (res.ignored.length > 0 ? `, ignored ${res.ignored.length} (${summarise(res.ignored)})` : ''),
          `wrote ${res.out}`,
        ].join('\n') + '\n',
      );
    });
}

function summarise(keys: string[]): string {
  const nbt = keys.filter((k) => k.endsWith('.num_batches_tracked')).length;
  const rest = keys.filter((k) => !k.endsWith('.num_batches_tracked'));
  const parts = nbt > 0 ? [`${nbt} num_batches_tracked`] : [];
  if (rest.length > 0) parts.push(rest.length > 6 ? `${rest.slice(0, 6).join(', ')}, ...` : rest.join(', '));
  return parts.join('; ');
}
