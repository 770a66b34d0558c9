import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_NAMES, probeBackends } from '@dfd/backends';
import { CLI_VERSION } from '../version.js';

/** The order `useBackend('auto')` tries backends in Node (webgpu is opt-in there). */
const AUTO_ORDER = BACKEND_NAMES.filter((n) => n !== 'webgpu');

/** What `useBackend('auto')` would select here, from the probe: the first available backend it tries. */
export function autoPick(backends: Array<{ name: string; available: boolean }>): string | null {
  return AUTO_ORDER.find((n) => backends.some((b) => b.name === n && b.available)) ?? null;
}

/** `dfd info`: versions, and which tfjs backends are available here (and why the others are not). */
export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print versions and the TensorFlow.js backends available on this machine')
    .option('--json', 'print machine-readable JSON')
    .action(async (opts: { json?: boolean }) => {
      const backends = await probeBackends();
      const info = {
        dfd: CLI_VERSION,
        node: process.versions.node,
        platform: `${process.platform}-${process.arch}`,
        tfjsCore: tf.version_core,
        backends,
        auto: autoPick(backends),
      };
      if (opts.json) {
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        return;
      }
      const lines = [
        `dfd ${info.dfd}  (node ${info.node}, ${info.platform}, tfjs-core ${info.tfjsCore})`,
        '',
        'backends:',
        ...backends.map((b) => `  ${b.available ? '✓' : '✗'} ${b.name.padEnd(15)} ${b.available ? (b.note ?? 'available') : b.reason}`),
        '',
        `auto (every command's default --backend) picks ${info.auto ?? 'none (no backend works)'}: the first available of ${AUTO_ORDER.join(' > ')}` +
          (typeof window === 'undefined' ? '; webgpu is not tried in Node (opt-in: useBackend with {nodeWebgpu: true})' : ''),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
