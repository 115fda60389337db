// The local stand-in for SQS + the extractor Lambda: an in-process queue drained by a bounded
// pool of workers. Like the cloud, a unit that fails is delivered again (up to `maxAttempts`,
// SQS's maxReceiveCount), after a delay (the visibility timeout, shortened), and then lands in
// the "dead-letter" list; CheckDrained reads `status()` the way the cloud handler reads the
// queue depths and the DLQ.

export interface WorkPoolOptions<U, R> {
  /** Workers running at once (config.extraction.concurrency). */
  concurrency: number;
  /** Processes one unit (the same function the Lambda handler calls). */
  process: (unit: U, attempt: number) => Promise<R>;
  /** Deliveries of a unit before it is dead-lettered (the ingestion stack's maxReceiveCount). */
  maxAttempts?: number;
  /** Delay before a failed unit is delivered again, per attempt (ms). */
  retryDelayMs?: (attempt: number) => number;
  onDone?: (unit: U, result: R) => void;
  onAttemptFailed?: (unit: U, attempt: number, error: Error) => void;
  onDeadLettered?: (unit: U, error: Error) => void;
}

export interface WorkPoolStatus {
  enqueued: number;
  done: number;
  failed: number;
  /** Waiting to be picked up (including units waiting to be retried). */
  waiting: number;
  inFlight: number;
}

interface Delivery<U> {
  unit: U;
  attempt: number;
}

export class WorkPool<U, R = unknown> {
  private readonly queue: Delivery<U>[] = [];
  private readonly maxAttempts: number;
  private readonly retryDelayMs: (attempt: number) => number;
  private enqueued = 0;
  private done = 0;
  private failed = 0;
  private inFlight = 0;
  private delayed = 0;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly idleWaiters: (() => void)[] = [];
  /** Units that ended in the dead-letter list, with the last error. */
  readonly deadLetters: { unit: U; error: string }[] = [];

  constructor(private readonly opts: WorkPoolOptions<U, R>) {
    if (!(opts.concurrency >= 1)) throw new Error("work pool: concurrency must be at least 1");
    this.maxAttempts = opts.maxAttempts ?? 3;
    this.retryDelayMs = opts.retryDelayMs ?? ((attempt) => Math.min(5000, 250 * 2 ** (attempt - 1)));
  }

  /** Adds units (FanOut's SendMessageBatch). */
  enqueue(units: readonly U[]): void {
    if (this.closed) throw new Error("work pool is closed");
    for (const unit of units) this.queue.push({ unit, attempt: 1 });
    this.enqueued += units.length;
    this.pump();
  }

  status(): WorkPoolStatus {
    return {
      enqueued: this.enqueued,
      done: this.done,
      failed: this.failed,
      waiting: this.queue.length + this.delayed,
      inFlight: this.inFlight,
    };
  }

  /** Nothing waiting, nothing in flight. */
  get idle(): boolean {
    return this.queue.length === 0 && this.delayed === 0 && this.inFlight === 0;
  }

  /** Resolves when the pool is idle (every unit done or dead-lettered). */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking units; waits for those in flight. Units still waiting are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.delayed = 0;
    this.queue.length = 0;
    if (this.inFlight > 0) await this.whenIdle();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.opts.concurrency && this.queue.length > 0) {
      const delivery = this.queue.shift()!;
      this.inFlight++;
      void this.deliver(delivery);
    }
    if (this.idle) for (const w of this.idleWaiters.splice(0)) w();
  }

  private async deliver(d: Delivery<U>): Promise<void> {
    try {
      const result = await this.opts.process(d.unit, d.attempt);
      this.done++;
      this.opts.onDone?.(d.unit, result);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.opts.onAttemptFailed?.(d.unit, d.attempt, error);
      if (d.attempt >= this.maxAttempts || this.closed) {
        this.failed++;
        this.deadLetters.push({ unit: d.unit, error: `${error.name}: ${error.message}` });
        this.opts.onDeadLettered?.(d.unit, error);
      } else {
        this.delayed++;
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.delayed--;
          if (this.closed) return;
          this.queue.push({ unit: d.unit, attempt: d.attempt + 1 });
          this.pump();
        }, this.retryDelayMs(d.attempt));
        this.timers.add(timer);
      }
    } finally {
      this.inFlight--;
      this.pump();
    }
  }
}
