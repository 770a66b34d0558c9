import type { DfdPlugin, EventOf, PluginContext, PluginRegistry } from '@dfd/core';

/** The part of a Node stream the console plugin writes to. */
export interface ConsoleStream {
  write(text: string): unknown;
  /** True on an interactive terminal: the plugin then redraws one line in place. */
  isTTY?: boolean;
  columns?: number;
}

/** Options of {@link ConsolePlugin}. */
export interface ConsoleOptions {
  /** Where to write (default process.stderr). */
  stream?: ConsoleStream;
  /** Force TTY (redraw) or plain (one line per epoch) output; default: `stream.isTTY`. */
  tty?: boolean;
  /** Bar width in characters (default 24). */
  barWidth?: number;
  /** Minimum milliseconds between redraws on a TTY (default 100). */
  redrawMs?: number;
  /** Clock, for tests (default Date.now). */
  now?: () => number;
}

/** `12:03`, `1:02:03`: durations for the ETA. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '--:--';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, '0');
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

/**
 * Training progress on the console: a progress bar with ETA and the running mean loss and
 * accuracy of the epoch. On a TTY one line is redrawn in place; otherwise (CI logs, files) one
 * line is printed per epoch, plus evaluations, warnings and errors.
 */
export class ConsolePlugin implements DfdPlugin {
  readonly name: string;
  readonly enforce = 'post' as const;
  private readonly stream: ConsoleStream;
  private readonly tty: boolean;
  private readonly barWidth: number;
  private readonly redrawMs: number;
  private readonly now: () => number;
  private stage = '';
  private runStartTime = 0;
  private stepsAtStart = 0;
  private lastDraw = -Infinity;
  private lineOpen = false;
  private epochLoss = 0;
  private epochAcc = 0;
  private epochAccCount = 0;
  private epochSteps = 0;

  constructor(options: ConsoleOptions = {}, name = 'console') {
    this.name = name;
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean(this.stream.isTTY);
    this.barWidth = options.barWidth ?? 24;
    this.redrawMs = options.redrawMs ?? 100;
    this.now = options.now ?? Date.now;
  }

  /** Subscribes to run, epoch, batch, evaluation, checkpoint, warning and error events. */
  setup(context: PluginContext): void {
    context.on('runStart', (e) => {
      this.stage = e.stage;
      this.runStartTime = this.now();
      this.stepsAtStart = e.startEpoch * e.stepsPerEpoch;
      this.println(`[${e.stage}] ${e.runId}: ${e.epochs} epoch(s) x ${e.stepsPerEpoch} step(s)${e.startEpoch > 0 ? `, resuming at epoch ${e.startEpoch + 1}` : ''}`);
    });
    context.on('epochStart', () => {
      this.epochLoss = 0;
      this.epochAcc = 0;
      this.epochAccCount = 0;
      this.epochSteps = 0;
    });
    context.on('batchEnd', (e) => this.onBatch(e));
    context.on('epochEnd', (e) => {
      // The line starts with the epoch: metrics.epoch would say it again; seconds read as a duration.
      const metrics = Object.entries(e.metrics)
        .filter(([k]) => k !== 'epoch')
        .map(([k, v]) => (k === 'seconds' ? `${v.toFixed(1)} s` : `${k} ${formatNumber(v)}`))
        .join('  ');
      this.println(`epoch ${e.epoch}/${e.totalEpochs}  ${metrics}`);
    });
    context.on('evaluation', (e) => {
      const parts = e.results.map((r) => `${r.target} ${(100 * r.accuracy).toFixed(2)}%`).join('  ');
      this.println(`  eval[${e.split}] ${parts}  mean ${(100 * e.mean).toFixed(2)}%`);
    });
    context.on('warning', (e) => this.println(`warning (${e.source}): ${e.message}`));
    context.on('error', (e) => this.println(`error (${e.source}): ${e.message}`));
    context.on('runEnd', (e) => this.println(`[${this.stage}] ${e.status} after ${e.epochsDone} epoch(s)${e.reason ? `: ${e.reason}` : ''} (${formatDuration(this.now() - this.runStartTime)})`));
  }

  /** The progress line for a `batchEnd` event (exposed for tests). */
  progressLine(e: EventOf<'batchEnd'>): string {
    const frac = (e.step + 1) / e.stepsPerEpoch;
    const filled = Math.round(frac * this.barWidth);
    const bar = '#'.repeat(filled) + '.'.repeat(this.barWidth - filled);
    const elapsed = this.now() - this.runStartTime;
    const done = e.globalStep - this.stepsAtStart;
    const eta = done > 0 ? (elapsed / done) * (e.totalSteps - e.globalStep) : Number.NaN;
    const loss = this.epochSteps > 0 ? this.epochLoss / this.epochSteps : e.loss.total;
    const acc = this.epochAccCount > 0 ? ` acc ${(100 * this.epochAcc / this.epochAccCount).toFixed(1)}%` : '';
    const speed = e.imagesPerSecond !== undefined ? ` ${e.imagesPerSecond.toFixed(1)} img/s` : '';
    return `epoch ${e.epoch + 1} [${bar}] ${e.step + 1}/${e.stepsPerEpoch} loss ${formatNumber(loss)}${acc}${speed} ETA ${formatDuration(eta)}`;
  }

  private onBatch(e: EventOf<'batchEnd'>): void {
    this.epochSteps++;
    this.epochLoss += e.loss.total;
    if (e.accuracy !== undefined) {
      this.epochAcc += e.accuracy;
      this.epochAccCount++;
    }
    if (!this.tty) return;
    const t = this.now();
    if (t - this.lastDraw < this.redrawMs && e.step + 1 < e.stepsPerEpoch) return;
    this.lastDraw = t;
    let line = this.progressLine(e);
    if (this.stream.columns && line.length > this.stream.columns - 1) line = line.slice(0, this.stream.columns - 1);
    this.stream.write(`\r\x1b[2K${line}`);
    this.lineOpen = true;
  }

  private println(text: string): void {
    if (this.lineOpen) {
      this.stream.write('\r\x1b[2K');
      this.lineOpen = false;
    }
    this.stream.write(text + '\n');
  }

  /** Closes an open progress line. */
  teardown(): void {
    if (this.lineOpen) this.stream.write('\n');
    this.lineOpen = false;
  }
}

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1000 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4);
}

/** Register `console` (options: {stream?, tty?, barWidth?}) in a plugin registry. */
export function registerConsole(registry: PluginRegistry): PluginRegistry {
  return registry.register<ConsoleOptions>('console', (o) => new ConsolePlugin(o ?? {}), 'progress bar with ETA and live loss/accuracy');
}
