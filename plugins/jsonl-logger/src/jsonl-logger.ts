import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DfdEvent, DfdEventType, DfdPlugin, PluginContext, PluginRegistry } from '@dfd/core';

/** Options of {@link JsonlLoggerPlugin}. */
export interface JsonlLoggerOptions {
  /** File to append to (created with its folder if missing). */
  path: string;
  /** Event types to log (default: all). */
  events?: DfdEventType[];
  /** Log every n-th `batchEnd` only (default 1: all). */
  batchEvery?: number;
}

/**
 * Appends one JSON object per bus event to a `.jsonl` file (`{time, ...event}`). Each line is
 * written with a synchronous write, and the file is fsynced at every epoch end and at run end,
 * so a crash loses at most the current epoch's batch lines and never leaves a half line.
 */
export class JsonlLoggerPlugin implements DfdPlugin {
  readonly name: string;
  private fd: number | undefined;
  private readonly path: string;
  private readonly filter: Set<string> | undefined;
  private readonly batchEvery: number;

  constructor(options: JsonlLoggerOptions, name = 'jsonl-logger') {
    this.name = name;
    this.path = options.path;
    this.filter = options.events ? new Set(options.events) : undefined;
    this.batchEvery = Math.max(1, options.batchEvery ?? 1);
  }

  /** Opens the file (append mode) and subscribes to every event. */
  setup(context: PluginContext): void {
    mkdirSync(dirname(this.path), { recursive: true });
    this.fd = openSync(this.path, 'a');
    context.on('*', (event) => this.write(event as DfdEvent));
  }

  private write(event: DfdEvent): void {
    if (this.fd === undefined) return;
    if (this.filter && !this.filter.has(event.type)) return;
    if (event.type === 'batchEnd' && this.batchEvery > 1 && (event.globalStep % this.batchEvery) !== 0) return;
    writeSync(this.fd, JSON.stringify({ time: new Date().toISOString(), ...event }, nonFinite) + '\n');
    if (event.type === 'epochEnd' || event.type === 'runEnd' || event.type === 'checkpoint' || event.type === 'error') fsyncSync(this.fd);
  }

  /** Flushes and closes the file. */
  teardown(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
  }
}

// JSON has no NaN/Infinity; write them as strings so that a diverged run is still visible.
function nonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

/** Register `jsonl-logger` (options: {path, events?, batchEvery?}) in a plugin registry. */
export function registerJsonlLogger(registry: PluginRegistry): PluginRegistry {
  return registry.register<JsonlLoggerOptions>('jsonl-logger', (o) => new JsonlLoggerPlugin(o), 'append every bus event to a JSONL file');
}
