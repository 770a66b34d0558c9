/*
 * Uncaught errors in a Node process that loaded tfjs's wasm module.
 *
 * Emscripten's Node runtime (every tfjs-backend-wasm build) adds, when the module starts,
 * `process.on('uncaughtException', ex => { if (!(ex instanceof ExitStatus)) throw ex })` and
 * `process.on('unhandledRejection', reason => { throw reason })`. Rethrowing from a handler makes
 * Node print the handler's source line (the whole minified module, about 55 KB) before the error
 * and exit with code 7: a user script whose `await createTrainer(...)` rejects, or a CLI error
 * that escapes main(), showed that instead of dfd's message. {@link replaceEmscriptenProcessHandlers}
 * removes those two handlers and installs one that prints the error in one line (a DfdError as
 * `dfd: <CODE>: <message>`; another error as its first line and a few stack frames) and exits 1.
 * It steps aside when the application has uncaughtException handlers of its own.
 */

/** Stack frames printed for an error that is not a DfdError (DFD_DEBUG=1 prints them all). */
const STACK_FRAMES = 4;

/** Emscripten's handlers, by their source (the same in the plain, SIMD and threaded builds). */
function isEmscriptenHandler(event: 'uncaughtException' | 'unhandledRejection', fn: (...a: never[]) => unknown): boolean {
  const src = Function.prototype.toString.call(fn).replace(/\s+/g, '');
  return event === 'uncaughtException' ? /^function\(\w+\)\{if\(!\(\w+instanceofExitStatus\)\)\{throw\w+\}\}$/.test(src) : /^function\((\w+)\)\{throw\1\}$/.test(src);
}

/**
 * How dfd prints an error nobody caught: a dfd error (an Error with a string `code` starting
 * `E_`, e.g. a DfdError from any copy of @dfd/core) as `dfd: <CODE>: <message>`; any other value
 * as `dfd: <name>: <message>` and its first {@link STACK_FRAMES} stack frames (all of them when
 * DFD_DEBUG is set). Ends with a newline.
 */
export function formatUncaughtError(err: unknown, env: Record<string, string | undefined> = process.env): string {
  const debug = env.DFD_DEBUG != null && env.DFD_DEBUG !== '' && env.DFD_DEBUG !== '0';
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const isDfd = typeof code === 'string' && /^E_[A-Z0-9_]+$/.test(code);
    const head = isDfd ? `dfd: ${code}: ${err.message}` : `dfd: ${err.name}: ${err.message}`;
    const frames = (err.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
    const shown = debug ? frames : isDfd ? [] : frames.slice(0, STACK_FRAMES);
    const more = !debug && frames.length > shown.length && !isDfd ? [`    ... (DFD_DEBUG=1 prints the whole stack)`] : [];
    return [head, ...shown, ...more].join('\n') + '\n';
  }
  return `dfd: uncaught ${typeof err}: ${String(err)}\n`;
}

function dfdUncaught(err: unknown): void {
  // An application's own handler decides (Node calls every listener; ours is one of them).
  if (process.listenerCount('uncaughtException') > 1) return;
  process.stderr.write(formatUncaughtError(err));
  process.exit(1);
}

/**
 * Removes Emscripten's `uncaughtException` and `unhandledRejection` process handlers (see the
 * header comment) and, when it removed one, installs dfd's (idempotent). Called right after dfd
 * starts a tfjs wasm module in Node, and when useBackend('wasm') finds one already started.
 * Returns the number of handlers removed. A no-op outside Node.
 */
export function replaceEmscriptenProcessHandlers(): number {
  if (typeof process === 'undefined' || typeof process.listeners !== 'function') return 0;
  let removed = 0;
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    for (const fn of (process.listeners as (e: string) => unknown[])(event) as Array<(...a: never[]) => unknown>) {
      if (isEmscriptenHandler(event, fn)) {
        process.removeListener(event as 'uncaughtException', fn as () => void);
        removed++;
      }
    }
  }
  // Without an unhandledRejection listener, Node turns a rejection into an uncaught exception.
  if (removed > 0 && !process.listeners('uncaughtException').includes(dfdUncaught)) process.on('uncaughtException', dfdUncaught);
  return removed;
}
