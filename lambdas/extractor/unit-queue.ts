// Where fanned-out work units go: an SQS queue in the cloud (the download and search workers are
// SQS-triggered Lambdas), an in-memory queue locally (drained by the in-process worker pool).
import { awsClientConfig } from "../../lib/core/storage";
import type { WorkUnit } from "./work-units";

export interface QueueDepth {
  /** Units waiting or being worked on. */
  pending: number;
  /** Units that ended in a dead-letter queue (failed after every retry). */
  deadLettered: number;
}

export interface UnitQueue {
  enqueue(units: readonly WorkUnit[]): Promise<void>;
  depth(): Promise<QueueDepth>;
}

/** The local queue: FIFO in memory; the worker pool takes units with `take()`. */
export class LocalUnitQueue implements UnitQueue {
  private readonly items: WorkUnit[] = [];
  private inFlight = 0;
  private waiters: Array<() => void> = [];

  async enqueue(units: readonly WorkUnit[]): Promise<void> {
    this.items.push(...units);
    const w = this.waiters;
    this.waiters = [];
    for (const wake of w) wake();
  }

  async depth(): Promise<QueueDepth> {
    return { pending: this.items.length + this.inFlight, deadLettered: 0 };
  }

  /** The next unit, or undefined when the queue is empty. */
  take(): WorkUnit | undefined {
    const u = this.items.shift();
    if (u) this.inFlight += 1;
    return u;
  }

  /** The worker finished (or gave up on) a unit it took. */
  done(): void {
    this.inFlight -= 1;
  }

  get size(): number {
    return this.items.length;
  }
}

/** Minimal view of the SQS client (so the queue is testable without AWS). */
export interface SqsLike {
  sendBatch(queueUrl: string, bodies: string[]): Promise<void>;
  approximateCounts(queueUrl: string): Promise<{ visible: number; inFlight: number; delayed: number }>;
}

/** SQS: one message per unit (the body is the unit's JSON), sent in batches of ten. */
export class SqsUnitQueue implements UnitQueue {
  constructor(
    private readonly sqs: SqsLike,
    private readonly queueUrlOf: (u: WorkUnit) => string,
    private readonly queueUrls: string[],
    private readonly dlqUrls: string[],
  ) {}

  async enqueue(units: readonly WorkUnit[]): Promise<void> {
    const byQueue = new Map<string, string[]>();
    for (const u of units) {
      const q = this.queueUrlOf(u);
      let l = byQueue.get(q);
      if (!l) byQueue.set(q, (l = []));
      l.push(JSON.stringify(u));
    }
    for (const [q, bodies] of byQueue) for (let i = 0; i < bodies.length; i += 10) await this.sqs.sendBatch(q, bodies.slice(i, i + 10));
  }

  async depth(): Promise<QueueDepth> {
    let pending = 0;
    let deadLettered = 0;
    for (const q of this.queueUrls) {
      const c = await this.sqs.approximateCounts(q);
      pending += c.visible + c.inFlight + c.delayed;
    }
    for (const q of this.dlqUrls) {
      const c = await this.sqs.approximateCounts(q);
      deadLettered += c.visible + c.inFlight + c.delayed;
    }
    return { pending, deadLettered };
  }
}

/** SqsLike over @aws-sdk/client-sqs (loaded lazily). */
export async function awsSqs(): Promise<SqsLike> {
  const sqs = await import("@aws-sdk/client-sqs");
  const client = new sqs.SQSClient(awsClientConfig());
  return {
    async sendBatch(queueUrl, bodies) {
      const res = await client.send(
        new sqs.SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: bodies.map((b, i) => ({ Id: String(i), MessageBody: b })) }),
      );
      if (res.Failed && res.Failed.length > 0)
        throw new Error(`SQS refused ${res.Failed.length} of ${bodies.length} messages (${res.Failed[0].Code})`);
    },
    async approximateCounts(queueUrl) {
      const res = await client.send(
        new sqs.GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
        }),
      );
      const a = res.Attributes ?? {};
      return {
        visible: Number(a.ApproximateNumberOfMessages ?? 0),
        inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
        delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
      };
    },
  };
}
