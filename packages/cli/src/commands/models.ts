import type { Command } from 'commander';

/** `dfd models list`: the pretrained face networks dfd can stand on, and whether they are installed here. */
export function registerModels(program: Command): void {
  const models = program.command('models').description('pretrained face networks (backbones, EIFEs, baseline classifiers) from installed npm packages');
  models
    .command('list')
    .description('list the zoo: id, roles, source package and version, input size and preprocessing, license, size, installed or not')
    .option('--json', 'print machine-readable JSON')
    .action(async (opts: { json?: boolean }) => {
      const { listZooModels } = await import('@dfd/zoo/node');
      const { installCommand } = await import('@dfd/zoo');
      const list = await listZooModels();
      if (opts.json) {
        process.stdout.write(JSON.stringify(list, null, 2) + '\n');
        return;
      }
      const rows = list.map((e) => [
        e.id,
        e.roles.join(','),
        `${e.package}@${e.version ?? e.versionRange}`,
        `${e.inputSize}px`,
        e.embedDim ? `${e.embedDim}-d` : '-',
        e.license,
        e.bytes !== undefined ? `${(e.bytes / 1e6).toFixed(1)} MB` : '-',
        e.installed ? 'installed' : `missing: ${installCommand(e)}`,
      ]);
      const head = ['id', 'roles', 'package', 'input', 'embedding', 'license', 'size', 'status'];
      const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i]!))).join('  ');
      // Backbones, EIFEs and classifiers take dfd's batches and convert them; detectors and landmark nets take images.
      const onBatches = (e: { roles: string[] }) => e.roles.some((r) => r === 'backbone' || r === 'eife' || r === 'classifier');
      process.stdout.write(
        [
          line(head),
          ...rows.map(line),
          '',
          "preprocessing (backbones, EIFEs, classifiers: dfd converts its ImageNet-normalised batches itself; detectors and landmark nets: from the image's RGB bytes):",
          ...list.map((e) => `  ${e.id}${onBatches(e) ? '' : ' (from the image)'}: ${e.preprocessing}`),
          '',
        ].join('\n'),
      );
    });
}
