import { Command, CommanderError } from 'commander';
import { DfdError, describeFsError } from '@dfd/core';
import { registerCommands } from './commands/index.js';
import { CLI_VERSION } from './version.js';

/** Build the `dfd` program with every command registered. */
export function createProgram(): Command {
  const program = new Command('dfd')
    .description('DFD-Net: single-domain generalized facial expression recognition on TensorFlow.js')
    .version(CLI_VERSION, '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

/** Run the CLI on `argv` (as `process.argv`) and return the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help/version exit with code 0; usage errors were already printed by commander.
      return err.exitCode;
    }
    if (err instanceof DfdError) {
      process.stderr.write(`dfd: ${err.message}\n`);
      return 1;
    }
    const hint = explainRuntimeError(err);
    if (hint) {
      process.stderr.write(`dfd: ${hint}\n`);
      return 1;
    }
    process.stderr.write(`dfd: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

/**
 * What to do about errors the runtime throws without context: a file-system error becomes one
 * line naming the path and the cause; an Emscripten abort of the wasm backend is almost always
 * its 4 GB heap running out. Returns null for anything else.
 */
export function explainRuntimeError(err: unknown): string | null {
  // A file-system error (a file where a folder should be, a read-only mount, no permission, a full disk): one line naming the path.
  const fs = describeFsError(err);
  if (fs) return fs;
  const message = err instanceof Error ? err.message : String(err);
  if (/^Aborted\(|Aborted\(OOM\)|Cannot enlarge memory|Out of memory/i.test(message)) {
    return (
      `the wasm backend ran out of memory (${message.split('.')[0]}): its heap is limited to 4 GB, and DFD-Net at 90x90 trains ` +
      'about 32 images per pass there. Lower --batch-size, or keep the batch and add --micro-batch 32 (gradients are summed ' +
      'over the batch; batch norm then normalises over 32). Checkpoints already written in the run folder are intact (--resume).'
    );
  }
  return null;
}
