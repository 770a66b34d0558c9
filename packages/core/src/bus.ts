import { Observable, Subject, asapScheduler, filter, observeOn, type Subscription } from 'rxjs';
import type { DfdEvent, DfdEventType, EventOf } from './events.js';

/** A handler for bus events; async handlers are awaited one event at a time, in order. */
export type EventHandler<E> = (event: E) => void | Promise<void>;

/**
 * The typed event bus. `emit` never blocks and never throws because of a subscriber:
 * delivery is asynchronous, every subscriber has its own unbounded FIFO queue (slow ones fall
 * behind but lose nothing), and a failing handler becomes an `error` event.
 */
export class EventBus {
  private readonly subject = new Subject<DfdEvent>();
  private pending = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  /** Publish an event. The payload is cloned and frozen so subscribers cannot alter it. */
  emit(event: DfdEvent): void {
    if (this.closed) return;
    this.subject.next(deepFreeze(structuredClone(event)));
  }

  /** Observable of the events with tag `type` (or of all events for `'*'`), delivered asynchronously. */
  on<T extends DfdEventType>(type: T): Observable<EventOf<T>>;
  on(type: '*'): Observable<DfdEvent>;
  on(type: DfdEventType | '*'): Observable<DfdEvent> {
    return this.subject.pipe(
      filter((e) => type === '*' || e.type === type),
      observeOn(asapScheduler),
    );
  }

  /**
   * Run `handler` for each matching event, in emission order. Errors thrown (or rejected) by the
   * handler are caught and re-published as `{type: 'error', source}` events.
   */
  subscribe<T extends DfdEventType>(type: T | '*', handler: EventHandler<EventOf<T>>, source = 'subscriber'): Subscription {
    const queue: DfdEvent[] = [];
    let running = false;
    const pump = async () => {
      running = true;
      while (queue.length > 0) {
        const event = queue.shift()!;
        try {
          await handler(event as EventOf<T>);
        } catch (err) {
          this.reportHandlerError(source, event, err);
        } finally {
          this.settle();
        }
      }
      running = false;
    };
    // Counting happens synchronously at emit time so drain() sees events still in flight.
    const sub = this.subject.pipe(filter((e) => type === '*' || e.type === type)).subscribe((event) => {
      this.pending++;
      queue.push(event);
      if (!running) {
        running = true;
        queueMicrotask(() => void pump());
      }
    });
    sub.add(() => {
      this.pending -= queue.length;
      queue.length = 0;
      if (this.pending === 0) this.wakeIdle();
    });
    return sub;
  }

  /** Resolves once every subscriber has handled every event emitted so far. */
  drain(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Complete the bus: subscribers are released and later emits are ignored. */
  close(): void {
    this.closed = true;
    this.subject.complete();
  }

  private settle(): void {
    this.pending--;
    if (this.pending === 0) this.wakeIdle();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private reportHandlerError(source: string, event: DfdEvent, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (event.type === 'error') {
      // An error handler that fails must not feed itself forever.
      console.error(`[dfd] ${source} failed while handling an error event: ${message}`);
      return;
    }
    this.emit({
      type: 'error',
      source,
      message: `${source} failed on '${event.type}': ${message}`,
      stack: err instanceof Error ? err.stack : undefined,
    });
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
