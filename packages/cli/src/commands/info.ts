import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { probeBackends } from '@dfd/backends';
import { CLI_VERSION } from '../version.js';

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
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
