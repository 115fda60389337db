// An SQS-fed extractor: a work queue with a dead-letter queue (redrive after a few receives), both
// encrypted with the lake key and TLS-only, feeding a PipelineFunction whose concurrency is capped
// twice — the event source's maxConcurrency (how many copies SQS keeps busy) and the function's
// reserved concurrency (the hard ceiling), both equal, so the shared Epic rate budget holds and no
// message is throttled back into the queue (which would burn its receive count toward the DLQ).
import { Duration } from "aws-cdk-lib";
import * as eventSources from "aws-cdk-lib/aws-lambda-event-sources";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { PipelineFunction, type PipelineFunctionProps } from "./pipeline-function";

export interface ThrottledExtractorProps extends Omit<PipelineFunctionProps, "reservedConcurrentExecutions"> {
  /** Concurrent invocations: event source maxConcurrency and reserved concurrency (>= 2). */
  readonly concurrency: number;
  /** Messages per invocation (each a work unit: a bulk output file or a patient batch). */
  readonly batchSize: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
}

export class ThrottledExtractor extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly worker: PipelineFunction;

  constructor(scope: Construct, id: string, props: ThrottledExtractorProps) {
    super(scope, id);
    if (!Number.isInteger(props.concurrency) || props.concurrency < 2 || props.concurrency > 1000) {
      throw new Error(`concurrency must be an integer in 2..1000 (SQS event source limits), got ${props.concurrency}`);
    }
    this.deadLetterQueue = new sqs.Queue(this, "DeadLetterQueue", {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, "Queue", {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      dataKeyReuse: Duration.hours(1),
      enforceSSL: true,
      // AWS's guidance for Lambda sources: at least six times the function timeout.
      visibilityTimeout: Duration.seconds(props.timeout.toSeconds() * 6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
    this.worker = new PipelineFunction(this, "Worker", { ...props, reservedConcurrentExecutions: props.concurrency });
    this.worker.function.addEventSource(
      new eventSources.SqsEventSource(this.queue, {
        batchSize: props.batchSize,
        maxConcurrency: props.concurrency,
        reportBatchItemFailures: true,
      }),
    );
  }
}
