// The Lambda handlers, end to end the way the cloud runs them, against the real simulator and
// moto (a local emulator of S3, SQS and Secrets Manager; AWS itself is not reachable from tests):
// the private key comes from Secrets Manager, units travel through SQS, bronze and the run
// records land in S3, the workers report failed messages as batch item failures.
import * as fs from "node:fs";
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { readParquetTable } from "../../lambdas/extractor/bronze/bronze-parquet";
import type { SqsEvent } from "../../lambdas/handlers/messages";
import { loadConfig } from "../../config/load";
import { functionConfig, FUNCTION_ENV } from "../../lib/core/function-environment";
import type { RunContext } from "../../lib/core/pipeline-steps";
import { AWS_ENDPOINT_ENV } from "../../lib/core/storage";
import { startSimulator, type SimulatorHandle } from "../../lib/simulator";
import { MOTO_ENV, startMoto, type MotoServer } from "../aws/moto-server";

const BUCKET = "fhir-lake-test";

describe("extractor Lambda handlers (moto: S3, SQS, Secrets Manager)", () => {
  let moto: MotoServer;
  let sim: SimulatorHandle;
  let s3: S3Client;
  let sqs: SQSClient;
  const queues: Record<string, string> = {};
  const saved = { ...process.env };

  beforeAll(async () => {
    moto = await startMoto();
    Object.assign(process.env, MOTO_ENV, {
      [AWS_ENDPOINT_ENV]: moto.endpoint,
      POWERTOOLS_METRICS_DISABLED: "true",
      POWERTOOLS_LOG_LEVEL: "ERROR",
    });
    const aws = { endpoint: moto.endpoint, region: "us-east-1" };
    s3 = new S3Client({ ...aws, forcePathStyle: true });
    sqs = new SQSClient(aws);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    for (const q of ["download", "search", "download-dlq", "search-dlq"])
      queues[q] = (await sqs.send(new CreateQueueCommand({ QueueName: `fhir-${q}` }))).QueueUrl!;
    sim = await startSimulator({ patients: 8, seed: 31, resourcesPerFile: 500, faults: "500:0.03,truncate:0.1" });
    const secret = await new SecretsManagerClient(aws).send(
      new CreateSecretCommand({ Name: "fhir/epic-key", SecretString: fs.readFileSync(sim.privateKeyFile, "utf8") }),
    );
    const base = loadConfig("dev");
    const config = {
      ...base,
      epic: {
        ...base.epic,
        baseUrl: sim.baseUrl,
        tokenUrl: sim.tokenUrl,
        clientId: sim.clientId,
        keyId: sim.keyId,
        groupIds: sim.groupIds,
        privateKeySecretName: "fhir/epic-key",
      },
      extraction: {
        ...base.extraction,
        concurrency: 4,
        rateLimitPerSecond: 200,
        retry: { maxAttempts: 8, baseDelayMs: 5, maxDelayMs: 100 },
      },
    };
    Object.assign(process.env, {
      [FUNCTION_ENV.config]: JSON.stringify(functionConfig(config)),
      [FUNCTION_ENV.epicPrivateKeySecretArn]: secret.ARN!,
      [FUNCTION_ENV.bronzeUri]: `s3://${BUCKET}/bronze`,
      [FUNCTION_ENV.metricsUri]: `s3://${BUCKET}/metrics`,
      [FUNCTION_ENV.downloadQueueUrl]: queues.download,
      [FUNCTION_ENV.searchQueueUrl]: queues.search,
      [FUNCTION_ENV.downloadDlqUrl]: queues["download-dlq"],
      [FUNCTION_ENV.searchDlqUrl]: queues["search-dlq"],
    });
  });

  afterAll(async () => {
    const { resetExtractorDeps } = await import("../../lambdas/handlers/handler-runtime");
    resetExtractorDeps();
    process.env = saved;
    await sim?.stop();
    await moto?.stop();
  });

  /** What the Lambda service does with an SQS event source: deliver, then delete what succeeded. */
  async function deliver(
    queueUrl: string,
    handler: (e: SqsEvent) => Promise<{ batchItemFailures: Array<{ itemIdentifier: string }> }>,
  ): Promise<number> {
    let delivered = 0;
    for (;;) {
      const got = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 1,
          MessageSystemAttributeNames: ["ApproximateReceiveCount"],
        }),
      );
      const messages = got.Messages ?? [];
      if (messages.length === 0) return delivered;
      const event: SqsEvent = {
        Records: messages.map((m) => ({
          messageId: m.MessageId!,
          body: m.Body!,
          attributes: { ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount },
        })),
      };
      const res = await handler(event);
      const failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
      for (const m of messages)
        if (!failed.has(m.MessageId!)) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
      delivered += messages.length - failed.size;
    }
  }

  async function bronzeRows(runId: string): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "bronze/resource_type=", ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        if (!o.Key!.includes(`run_id=${runId}/`)) continue;
        const body = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: o.Key }))).Body!.transformToByteArray();
        const t = readParquetTable(body);
        const type = /resource_type=([A-Za-z]+)/.exec(o.Key!)![1];
        counts[type] = (counts[type] ?? 0) + t.numRows;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return counts;
  }

  async function json<T>(key: string): Promise<T> {
    const body = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
    return JSON.parse(body) as T;
  }

  it("bulk: kick-off, status, fan-out to SQS, download workers, drained, metrics", async () => {
    const kickoff = await import("../../lambdas/handlers/bulk-kickoff");
    const status = await import("../../lambdas/handlers/bulk-status");
    const fanOut = await import("../../lambdas/handlers/fan-out");
    const download = await import("../../lambdas/handlers/download-file");
    const drained = await import("../../lambdas/handlers/queue-drained");
    const publish = await import("../../lambdas/handlers/publish-metrics");
    const run: RunContext = {
      runId: "cloud-bulk-1",
      startedAt: new Date().toISOString(),
      mode: "bulk",
      groupIds: [sim.groupIds[0]],
      request: {},
    };
    const groupId = sim.groupIds[0];

    let exp = await kickoff.handler({ run, groupId });
    expect(exp).toMatchObject({ state: "in-progress", retryAfterSeconds: 1 });
    for (let i = 0; exp.state !== "complete" && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      exp = await status.handler({ run, groupId, export: exp });
    }
    expect(exp.state).toBe("complete");
    expect(exp).not.toHaveProperty("retryAfterMs");
    expect(exp.manifestUri).toBe(`s3://${BUCKET}/bronze/_runs/${run.runId}/exports/g0-manifest.json`);
    const out = await fanOut.handler({ run, groupId, export: exp });
    expect(out).toMatchObject({ groupId, mode: "bulk" });
    expect(out.unitsEnqueued).toBeGreaterThan(0);
    expect(out.unitsEnqueued).toBeLessThanOrEqual(exp.outputFiles!);

    expect(await drained.handler({ run, groups: [out] })).toMatchObject({
      state: "pending",
      unitsDone: 0,
      unitsEnqueued: out.unitsEnqueued,
    });
    expect(await deliver(queues.download, download.handler)).toBe(out.unitsEnqueued);
    const drain = await drained.handler({ run, groups: [out] });
    expect(drain).toMatchObject({ state: "drained", unitsDone: out.unitsEnqueued, unitsFailed: 0 });

    const stats = await sim.stats();
    const manifest = await json<{ resources: Record<string, number>; complete: boolean; bulk: Record<string, { jobDeleted: boolean }> }>(
      `bronze/_runs/${run.runId}/manifest.json`,
    );
    expect(manifest.complete).toBe(true);
    expect(manifest.bulk[groupId].jobDeleted).toBe(true);
    expect(await bronzeRows(run.runId)).toEqual(stats.served);

    const metrics = await publish.handler({ run, groups: [out], drain, silver: {}, gold: {}, maintenance: {} });
    expect(metrics.resources).toBe(Object.values(stats.served).reduce((a, b) => a + b, 0));
    expect(metrics.metricsUri).toMatch(new RegExp(`^s3://${BUCKET}/metrics/performance_metrics/part-${run.runId}-extract-.+\\.parquet$`));
    const key = metrics.metricsUri.replace(`s3://${BUCKET}/`, "");
    const rows = readParquetTable(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToByteArray());
    expect(rows.numRows).toBeGreaterThan(10);
  });

  it("search: patient batches and then shared resources through the search queue", async () => {
    const fanOut = await import("../../lambdas/handlers/fan-out");
    const worker = await import("../../lambdas/handlers/search-worker");
    const drained = await import("../../lambdas/handlers/queue-drained");
    await sim.resetStats();
    const run: RunContext = {
      runId: "cloud-search-1",
      startedAt: new Date().toISOString(),
      mode: "search",
      groupIds: [sim.groupIds[0]],
      request: {},
    };
    const out = await fanOut.handler({ run, groupId: sim.groupIds[0] });
    expect(out.mode).toBe("search");
    await deliver(queues.search, worker.handler);
    // patients done: CheckDrained enqueues the Practitioners/Organizations they reference
    const first = await drained.handler({ run, groups: [out] });
    expect(first.state).toBe("pending");
    expect(first.unitsEnqueued).toBeGreaterThan(out.unitsEnqueued);
    await deliver(queues.search, worker.handler);
    expect(await drained.handler({ run, groups: [out] })).toMatchObject({ state: "drained", unitsFailed: 0 });
    expect(await bronzeRows(run.runId)).toEqual((await sim.stats()).served);
  });

  it("reports an unreadable message as a batch item failure", async () => {
    const download = await import("../../lambdas/handlers/download-file");
    const res = await download.handler({
      Records: [
        { messageId: "m-1", body: "{not json" },
        { messageId: "m-2", body: JSON.stringify({ kind: "search-patients" }) },
      ],
    });
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: "m-1" }, { itemIdentifier: "m-2" }]);
  });
});
