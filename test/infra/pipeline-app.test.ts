// The CDK app, synthesized once (the real bin/app.ts wiring, cdk-nag packs included) and checked
// with aws-cdk-lib/assertions: encryption, least privilege, concurrency, EMR, the state machine,
// alarms, outputs, compliance findings, and that the Epic private key never reaches the assembly.
import { Match, Template } from "aws-cdk-lib/assertions";
import type { SynthesisMessage } from "aws-cdk-lib/cx-api";
import aslValidator from "asl-validator";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadConfig } from "../../config/load";
import type { PipelineConfig } from "../../config/schema";
import { LAMBDA_STEPS, STEP } from "../../lib/core/pipeline-steps";
import { exportName, outputsFromOutputsFile, STACK_OUTPUTS, stackName, type StackOutputKey } from "../../lib/core/stack-outputs";
import { buildStateMachineDefinition, type StateMachineBindings } from "../../lib/core/state-machine-definition";
import { readQueryFiles } from "../../lib/constructs/athena-named-queries";
import { DEFAULT_QUERIES_DIR } from "../../lib/stacks/analytics-stack";
import { ALARM_KINDS } from "../../lib/stacks/monitoring-stack";
import { createPipelineApp, type PipelineStacks } from "../../lib/stacks/pipeline-app";
import { asList, iamStatements, placeholder, roleStatements, type CfnValue, type Resources, type Statement } from "./template-values";

let config: PipelineConfig;
let stacks: PipelineStacks;
let templates: Record<keyof PipelineStacks, Template>;
let resources: Record<keyof PipelineStacks, Resources>;
let messages: Record<keyof PipelineStacks, SynthesisMessage[]>;
let outdir: string;
let pemBody: string;
let tmp: string;

beforeAll(() => {
  // A real private key in a file the config points at: synthesis must never read it into the assembly.
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "infra-test-"));
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  pemBody = pem.split("\n")[5];
  fs.writeFileSync(path.join(tmp, "key.pem"), pem);
  const dev = loadConfig("dev");
  config = { ...dev, epic: { ...dev.epic, privateKeyFile: path.join(tmp, "key.pem"), groupIds: ["group-a", "group-b"] } };

  outdir = path.join(tmp, "cdk.out");
  const built = createPipelineApp(config, { outdir });
  // One synthesis for the whole file (Annotations.fromStack would re-synthesize on every call).
  const assembly = built.app.synth();
  stacks = built.stacks;
  const artifact = (s: PipelineStacks[keyof PipelineStacks]) => assembly.getStackArtifact(s.artifactId);
  templates = Object.fromEntries(Object.entries(stacks).map(([k, s]) => [k, Template.fromJSON(artifact(s).template)])) as typeof templates;
  messages = Object.fromEntries(Object.entries(stacks).map(([k, s]) => [k, artifact(s).messages])) as typeof messages;
  resources = Object.fromEntries(Object.entries(templates).map(([k, t]) => [k, t.toJSON().Resources])) as typeof resources;
}, 600_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ofType = (stack: keyof PipelineStacks, type: string) => Object.entries(resources[stack]).filter(([, r]) => r.Type === type);
const isLakeKey = (v: unknown) => {
  const s = String(placeholder(v));
  return s === "<LakeKey09476F72.Arn>" || /^<Import:fhir-lakehouse-dev-storage:ExportsOutputFnGetAttLakeKey[0-9A-F]+Arn[0-9A-F]+>$/.test(s);
};

describe("encryption with the lake's KMS key", () => {
  test("the key rotates", () => {
    templates.storage.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
  });

  test("every bucket but the access-log target uses SSE-KMS with the key; the log target uses SSE-S3 (S3 log delivery requires it)", () => {
    const buckets = ofType("storage", "AWS::S3::Bucket");
    expect(buckets).toHaveLength(6);
    for (const [id, b] of buckets) {
      const enc = b.Properties!.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault;
      if (id.startsWith("AccessLogs")) expect(enc).toEqual({ SSEAlgorithm: "AES256" });
      else expect({ id, alg: enc.SSEAlgorithm, key: isLakeKey(enc.KMSMasterKeyID) }).toEqual({ id, alg: "aws:kms", key: true });
    }
  });

  test("every queue, topic, log group and secret in every stack uses the key", () => {
    const checks: [string, string][] = [
      ["AWS::SQS::Queue", "KmsMasterKeyId"],
      ["AWS::SNS::Topic", "KmsMasterKeyId"],
      ["AWS::Logs::LogGroup", "KmsKeyId"],
      ["AWS::SecretsManager::Secret", "KmsKeyId"],
    ];
    const seen: Record<string, number> = {};
    for (const stack of Object.keys(resources) as (keyof PipelineStacks)[]) {
      for (const [type, prop] of checks) {
        for (const [id, r] of ofType(stack, type)) {
          seen[type] = (seen[type] ?? 0) + 1;
          expect({ stack, id, encrypted: isLakeKey(r.Properties?.[prop]) }).toEqual({ stack, id, encrypted: true });
        }
      }
    }
    // 4 queues (2 work + 2 DLQ), 2 topics, 7 function + flow-log + state-machine log groups, 1 secret.
    expect(seen).toEqual({ "AWS::SQS::Queue": 4, "AWS::SNS::Topic": 2, "AWS::Logs::LogGroup": 9, "AWS::SecretsManager::Secret": 1 });
  });

  test("buckets: TLS only, no public access, versioned, access-logged, noncurrent versions expire", () => {
    for (const [id, b] of ofType("storage", "AWS::S3::Bucket")) {
      const p = b.Properties!;
      expect(p.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(p.VersioningConfiguration).toEqual({ Status: "Enabled" });
      expect(
        p.LifecycleConfiguration.Rules.some(
          (r: CfnValue) => r.NoncurrentVersionExpiration?.NoncurrentDays === config.storage.noncurrentVersionExpirationDays,
        ),
      ).toBe(true);
      if (!id.startsWith("AccessLogs")) expect(placeholder(p.LoggingConfiguration.DestinationBucketName)).toMatch(/^<Ref:AccessLogsBucket/);
    }
    const policies = ofType("storage", "AWS::S3::BucketPolicy");
    expect(policies).toHaveLength(6);
    for (const [, bp] of policies) {
      const denies = bp.Properties!.PolicyDocument.Statement.filter((s: Statement) => s.Effect === "Deny");
      expect(denies.some((s: Statement) => s.Condition?.Bool?.["aws:SecureTransport"] === "false")).toBe(true);
    }
  });

  test("bronze moves to Infrequent Access then Glacier after the configured ages", () => {
    const [, bronze] = ofType("storage", "AWS::S3::Bucket").find(([id]) => id.startsWith("Bronze"))!;
    const rule = bronze.Properties!.LifecycleConfiguration.Rules.find((r: CfnValue) => r.Transitions);
    expect(rule.Transitions).toEqual([
      { StorageClass: "STANDARD_IA", TransitionInDays: config.storage.bronzeInfrequentAccessAfterDays },
      { StorageClass: "GLACIER", TransitionInDays: config.storage.bronzeGlacierAfterDays },
    ]);
  });

  test("the Glue databases of silver and gold exist, located in their buckets", () => {
    const dbs = ofType("storage", "AWS::Glue::Database").map(([, r]) => r.Properties!.DatabaseInput);
    expect(dbs.map((d) => d.Name).sort()).toEqual(["gold", "silver"]);
    for (const d of dbs)
      expect(placeholder(d.LocationUri)).toMatch(new RegExp(`^s3://<Ref:${d.Name === "gold" ? "Gold" : "Silver"}Bucket.*>/${d.Name}$`));
  });
});

describe("least privilege", () => {
  test("no IAM statement in any stack grants every action, or every S3 action", () => {
    const all = (Object.keys(resources) as (keyof PipelineStacks)[]).flatMap((s) =>
      iamStatements(resources[s]).map((x) => ({ stack: s, ...x })),
    );
    expect(all.length).toBeGreaterThan(40);
    const broad = all.filter(({ statement }) => asList(statement.Action).some((a) => a === "*" || /^[a-z0-9-]+:\*$/.test(a)));
    expect(broad).toEqual([]);
  });

  /** The S3 object prefixes a function may use, per action, from its role's policies. */
  function s3Access(functionLogicalIdPrefix: string): Record<string, string[]> {
    const [fnId, fn] = Object.entries(resources.ingestion).find(
      ([id, r]) => r.Type === "AWS::Lambda::Function" && id.startsWith(functionLogicalIdPrefix),
    )!;
    const roleId = (fn.Properties!.Role as { "Fn::GetAtt": string[] })["Fn::GetAtt"][0];
    const out: Record<string, string[]> = {};
    for (const st of roleStatements(resources.ingestion, roleId)) {
      for (const action of asList(st.Action).filter((a) => a.startsWith("s3:"))) {
        for (const r of asList(st.Resource)) {
          let where = String(placeholder(r)).replace(/^<Import:[^>]*(Bronze|Metrics)Bucket[^>]*>/, (_m, b: string) => b.toLowerCase());
          if (st.Condition?.StringLike?.["s3:prefix"]) where += ` prefix=${asList(st.Condition.StringLike["s3:prefix"]).join(",")}`;
          (out[action] ??= []).push(where);
        }
      }
    }
    for (const k of Object.keys(out)) out[k].sort();
    expect(fnId).toBeDefined();
    return out;
  }

  test("data-bucket access is scoped per function to its own prefixes", () => {
    const runs = "bronze/bronze/_runs/*";
    const data = ["bronze/bronze/_rejects/*", "bronze/bronze/_runs/*", "bronze/bronze/resource_type=*"];
    const ownParts = ["bronze/bronze/_rejects/*", "bronze/bronze/resource_type=*"];
    const list = ["bronze"]; // the bucket itself: lets a missing key read as 404, not 403
    const runRecords = { "s3:GetObject": [runs], "s3:PutObject": [runs], "s3:AbortMultipartUpload": [runs], "s3:ListBucket": list };
    const worker = {
      "s3:GetObject": [runs],
      "s3:PutObject": data,
      "s3:AbortMultipartUpload": data,
      "s3:DeleteObject": ownParts,
      "s3:ListBucket": list,
    };
    expect(s3Access("DownloadWorkerFunction")).toEqual(worker);
    expect(s3Access("SearchWorkerFunction")).toEqual(worker);
    expect(s3Access("BulkKickOffFunction")).toEqual(runRecords);
    expect(s3Access("PollBulkStatusFunction")).toEqual(runRecords);
    expect(s3Access("FanOutFunction")).toEqual(runRecords);
    expect(s3Access("CheckDrainedFunction")).toEqual(runRecords);
    const metrics = ["metrics/metrics/performance_metrics/*"];
    expect(s3Access("PublishMetricsFunction")).toEqual({
      "s3:GetObject": [runs],
      "s3:ListBucket": list,
      "s3:PutObject": metrics,
      "s3:AbortMultipartUpload": metrics,
    });
  });

  test("the Spark job role reaches each layer by prefix and only the two Glue databases", () => {
    const roleId = Object.entries(resources.processing).find(([id, r]) => r.Type === "AWS::IAM::Role" && id.startsWith("JobRole"))![0];
    const sts = roleStatements(resources.processing, roleId);
    const s3Objects = sts
      .filter((s) => asList(s.Action).some((a) => a.startsWith("s3:") && a !== "s3:ListBucket"))
      .flatMap((s) => asList(s.Resource).map((r) => String(placeholder(r))));
    for (const r of s3Objects) {
      expect(r).toMatch(
        /(\/bronze\/\*|\/silver\/\*|\/gold\/\*|\/metrics\/performance_metrics\/\*|\/emr-logs\/\*|cdk-hnb659fds-assets-[^/]*\/[0-9a-f]{64}\.(zip|py))$/,
      );
    }
    const glue = sts.find((s) => s.Sid === "GlueCatalogOfTheLake")!;
    expect(
      asList(glue.Resource)
        .map((r) => String(placeholder(r)).replace(/^arn:<Ref:AWS::Partition>:glue:<Ref:AWS::Region>:<Ref:AWS::AccountId>:/, ""))
        .sort(),
    ).toEqual(["catalog", "database/gold", "database/silver", "table/gold/*", "table/silver/*"]);
  });

  test("the extractors' security group allows HTTPS to Epic's CIDRs and the VPC only", () => {
    const [, sg] = ofType("ingestion", "AWS::EC2::SecurityGroup").find(([id]) => id.startsWith("ExtractorSecurityGroup"))!;
    const egress = sg.Properties!.SecurityGroupEgress.map((e: CfnValue) => `${e.IpProtocol}:${e.FromPort}-${e.ToPort}:${e.CidrIp}`).sort();
    expect(egress).toEqual([...config.network.epicEgressCidrs, config.network.vpcCidr].map((c) => `tcp:443-443:${c}`).sort());
  });

  test("VPC endpoints for S3, SQS, Secrets Manager, KMS, CloudWatch Logs and metrics, STS, Glue, X-Ray and EMR Serverless", () => {
    const services = ofType("ingestion", "AWS::EC2::VPCEndpoint").map(([, r]) =>
      String(placeholder(r.Properties!.ServiceName)).split(".").pop(),
    );
    expect(services.sort()).toEqual(["emr-serverless", "glue", "kms", "logs", "monitoring", "s3", "secretsmanager", "sqs", "sts", "xray"]);
  });
});

describe("extractor functions", () => {
  const fns = () => ofType("ingestion", "AWS::Lambda::Function").filter(([id]) => !id.startsWith("CustomVpcRestrictDefaultSG"));

  test("seven functions: Node.js 22 on arm64, traced, in the VPC, Powertools configured, reserved concurrency set", () => {
    expect(fns()).toHaveLength(7);
    for (const [id, f] of fns()) {
      const p = f.Properties!;
      expect({ id, runtime: p.Runtime, arch: p.Architectures, tracing: p.TracingConfig }).toEqual({
        id,
        runtime: "nodejs22.x",
        arch: ["arm64"],
        tracing: { Mode: "Active" },
      });
      expect(p.VpcConfig.SubnetIds.length).toBeGreaterThan(0);
      expect(p.Environment.Variables).toMatchObject({
        POWERTOOLS_SERVICE_NAME: "fhir-pipeline",
        POWERTOOLS_METRICS_NAMESPACE: "FhirLakehouse",
        POWERTOOLS_LOGGER_LOG_EVENT: "false",
      });
      expect(p.ReservedConcurrentExecutions).toBeGreaterThan(0);
      expect(isLakeKey(p.KmsKeyArn)).toBe(true);
    }
  });

  test("the environment holds config and locations, never the private key", () => {
    for (const [, f] of fns()) {
      const env = JSON.stringify(f.Properties!.Environment.Variables);
      expect(env).not.toContain("PRIVATE KEY");
      expect(env).not.toContain("privateKeyFile");
      expect(JSON.parse(f.Properties!.Environment.Variables.FHIR_PIPELINE_CONFIG).epic.clientId).toBe(config.epic.clientId);
    }
  });

  test("the SQS workers: concurrency equal to config.extraction.concurrency, partial batch failures, DLQ redrive", () => {
    const esms = ofType("ingestion", "AWS::Lambda::EventSourceMapping");
    expect(esms).toHaveLength(2);
    for (const [, e] of esms) {
      expect(e.Properties!.ScalingConfig).toEqual({ MaximumConcurrency: config.extraction.concurrency });
      expect(e.Properties!.FunctionResponseTypes).toEqual(["ReportBatchItemFailures"]);
      const fnId = e.Properties!.FunctionName.Ref;
      expect(resources.ingestion[fnId].Properties!.ReservedConcurrentExecutions).toBe(config.extraction.concurrency);
    }
    const queues = ofType("ingestion", "AWS::SQS::Queue").filter(([, q]) => q.Properties!.RedrivePolicy);
    expect(queues).toHaveLength(2);
    for (const [, q] of queues) expect(q.Properties!.RedrivePolicy.maxReceiveCount).toBe(3);
  });

  test("the step functions' concurrency follows orchestration.maxParallelGroups", () => {
    for (const name of ["BulkKickOff", "PollBulkStatus", "FanOut"]) {
      const [, f] = fns().find(([id]) => id.startsWith(`${name}Function`))!;
      expect(f.Properties!.ReservedConcurrentExecutions).toBe(config.orchestration.maxParallelGroups);
    }
  });

  test("the Epic key secret is encrypted, named from config, and has no value in the template", () => {
    const [, secret] = ofType("ingestion", "AWS::SecretsManager::Secret")[0];
    expect(secret.Properties!.Name).toBe(config.epic.privateKeySecretName);
    expect(secret.Properties!.SecretString).toBeUndefined();
  });
});

describe("the private key never reaches the cloud assembly", () => {
  test("no template, asset or manifest contains it", () => {
    const hits: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (fs.readFileSync(p).includes(pemBody)) hits.push(p);
        else if (/PRIVATE KEY-----/.test(fs.readFileSync(p, "latin1"))) hits.push(p);
      }
    };
    walk(outdir);
    expect(pemBody.length).toBeGreaterThan(40);
    expect(hits).toEqual([]);
  });
});

describe("processing", () => {
  test("the EMR Serverless application takes release label, capacity and auto-stop from config", () => {
    const p = config.processing;
    templates.processing.hasResourceProperties("AWS::EMRServerless::Application", {
      ReleaseLabel: p.releaseLabel,
      Type: "Spark",
      MaximumCapacity: { Cpu: p.maximumCapacity.cpu, Memory: p.maximumCapacity.memory, Disk: p.maximumCapacity.disk },
      AutoStopConfiguration: { Enabled: true, IdleTimeoutMinutes: p.autoStopIdleMinutes },
      InitialCapacity: [
        {
          Key: "Driver",
          Value: { WorkerCount: p.initialCapacity.driverWorkers, WorkerConfiguration: { Cpu: "2 vCPU", Memory: "9 GB", Disk: "20 GB" } },
        },
        {
          Key: "Executor",
          Value: { WorkerCount: p.initialCapacity.executorWorkers, WorkerConfiguration: { Cpu: "4 vCPU", Memory: "16 GB", Disk: "20 GB" } },
        },
      ],
      NetworkConfiguration: Match.objectLike({ SubnetIds: Match.anyValue() }),
    });
  });
});

describe("the state machine", () => {
  let definition: CfnValue;
  beforeAll(() => {
    const [, sm] = ofType("orchestration", "AWS::StepFunctions::StateMachine")[0];
    definition = JSON.parse(String(placeholder(sm.Properties!.DefinitionString)));
  });

  test("is valid ASL and contains each step", () => {
    // ARNs are deploy-time values here (rendered as placeholders); the pure definition test checks them.
    const v = aslValidator(structuredClone(definition), { checkArn: false });
    expect(v.errorsText("\n")).toBe("");
    const names = new Set([...Object.keys(definition.States), ...Object.keys(definition.States.ExtractGroups.ItemProcessor.States)]);
    for (const step of Object.values(STEP)) expect(names).toContain(step);
  });

  test("is exactly the shared builder's definition (what local runs execute), bound to this deployment", () => {
    const b = stacks.orchestration.bindings;
    const resolve = (v: string) => String(placeholder(stacks.orchestration.resolve(v)));
    const each = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolve(v)])) as T;
    const resolved: StateMachineBindings = {
      functionArns: each(b.functionArns),
      emr: each(b.emr),
      lake: each(b.lake),
      catalog: b.catalog,
      notificationTopicArn: resolve(b.notificationTopicArn),
    };
    expect(definition).toEqual(buildStateMachineDefinition(config, resolved));
  });

  test("Lambda steps call the ingestion stack's functions; Spark steps wait for EMR jobs with the configured settings", () => {
    const inner = definition.States.ExtractGroups.ItemProcessor.States;
    expect(inner.BulkKickOff.Resource).toMatch(/^<Import:fhir-lakehouse-dev-ingestion:ExportsOutputFnGetAttBulkKickOffFunction/);
    const silver = definition.States.SilverJob;
    expect(silver.Resource).toBe("arn:aws:states:::emr-serverless:startJobRun.sync");
    expect(silver.Parameters.ApplicationId).toMatch(/^<Import:fhir-lakehouse-dev-processing:.*SparkApplicationId/);
    const params = silver.Parameters.JobDriver.SparkSubmit.SparkSubmitParameters;
    expect(params).toContain(`--conf spark.sql.shuffle.partitions=${config.processing.spark.shufflePartitions}`);
    expect(params).toContain("--conf spark.sql.catalog.lake.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog");
    expect(params).toMatch(
      /--conf spark\.submit\.pyFiles=s3:\/\/cdk-hnb659fds-assets-<Ref:AWS::AccountId>-<Ref:AWS::Region>\/[0-9a-f]{64}\.zip/,
    );
    expect(silver.Parameters.JobDriver.SparkSubmit.EntryPoint).toMatch(/\.py$/);
    expect(definition.States.ExtractGroups.MaxConcurrency).toBe(config.orchestration.maxParallelGroups);
    expect(definition.States.StartRun.Parameters.run.groupIds).toEqual(["group-a", "group-b"]);
  });

  test("is logged (ALL, encrypted log group) and traced; its role can invoke exactly the five step functions", () => {
    templates.orchestration.hasResourceProperties("AWS::StepFunctions::StateMachine", {
      LoggingConfiguration: Match.objectLike({ Level: "ALL" }),
      TracingConfiguration: { Enabled: true },
    });
    const roleId = Object.entries(resources.orchestration).find(
      ([id, r]) => r.Type === "AWS::IAM::Role" && id.startsWith("StateMachineRole"),
    )![0];
    const invoke = roleStatements(resources.orchestration, roleId).find((s) => s.Sid === "InvokeStepFunctions")!;
    expect(asList(invoke.Resource)).toHaveLength(Object.keys(LAMBDA_STEPS).length);
  });

  test("an EventBridge Scheduler schedule from config starts it", () => {
    const o = config.orchestration;
    templates.orchestration.hasResourceProperties("AWS::Scheduler::Schedule", {
      ScheduleExpression: o.scheduleExpression,
      ScheduleExpressionTimezone: o.scheduleTimezone,
      State: o.enabled ? "ENABLED" : "DISABLED",
      Target: Match.objectLike({ Input: JSON.stringify({ mode: config.extraction.mode }) }),
    });
  });
});

describe("analytics", () => {
  test("the Athena workgroup enforces its settings, SSE-KMS results and the bytes-scanned cutoff", () => {
    const [, wg] = ofType("analytics", "AWS::Athena::WorkGroup")[0];
    const c = wg.Properties!.WorkGroupConfiguration;
    expect(c.EnforceWorkGroupConfiguration).toBe(true);
    expect(c.BytesScannedCutoffPerQuery).toBe(config.analytics.bytesScannedCutoffPerQuery);
    expect(c.ResultConfiguration.EncryptionConfiguration.EncryptionOption).toBe("SSE_KMS");
    expect(isLakeKey(c.ResultConfiguration.EncryptionConfiguration.KmsKey)).toBe(true);
    expect(String(placeholder(c.ResultConfiguration.OutputLocation))).toMatch(/^s3:\/\/<Import:.*AthenaResultsBucket.*>\/results\/$/);
  });

  test("one named query per analytics/queries/*.sql file, in the gold database", () => {
    const files = readQueryFiles(DEFAULT_QUERIES_DIR);
    const queries = ofType("analytics", "AWS::Athena::NamedQuery").map(([, q]) => q.Properties!);
    expect(queries.map((q) => q.Name).sort()).toEqual(files.map((f) => f.name).sort());
    for (const q of queries) expect(q.Database).toBe("gold");
  });
});

describe("monitoring", () => {
  const alarms = () => ofType("monitoring", "AWS::CloudWatch::Alarm").map(([, a]) => a.Properties!);
  const named = (kind: keyof typeof ALARM_KINDS) => alarms().filter((a) => String(a.AlarmName).includes(`-${ALARM_KINDS[kind]}`));

  test("every alarm notifies the encrypted alarm topic and names its runbook section", () => {
    const runbook = fs.readFileSync(path.join(__dirname, "..", "..", "docs", "runbooks.md"), "utf8");
    expect(alarms().length).toBeGreaterThan(30);
    for (const a of alarms()) {
      expect(asList(a.AlarmActions).map((x) => String(placeholder(x)))).toEqual([expect.stringMatching(/^<Ref:Alarms/)]);
      const anchor = /docs\/runbooks\.md#([a-z0-9-]+)/.exec(a.AlarmDescription)![1];
      expect(runbook).toContain(`<a id="${anchor}"></a>`);
    }
  });

  test("Lambda errors, throttles and p95 duration for each of the seven functions", () => {
    for (const [kind, metric] of [
      ["LambdaErrors", "Errors"],
      ["LambdaThrottles", "Throttles"],
      ["LambdaP95Duration", "Duration"],
    ] as const) {
      const found = named(kind);
      expect(found).toHaveLength(7);
      for (const a of found) expect({ ns: a.Namespace, metric: a.MetricName }).toEqual({ ns: "AWS/Lambda", metric });
    }
    for (const a of named("LambdaP95Duration")) {
      expect(a.ExtendedStatistic).toBe("p95");
      expect(a.Threshold).toBe(config.monitoring.lambdaP95DurationMs);
    }
  });

  test("SQS age of the oldest message and any message in a dead-letter queue", () => {
    const age = named("QueueOldestMessageAge");
    expect(age).toHaveLength(2);
    for (const a of age)
      expect([a.MetricName, a.Threshold]).toEqual(["ApproximateAgeOfOldestMessage", config.monitoring.queueOldestMessageAgeSeconds]);
    const dlq = named("DeadLetterMessages");
    expect(dlq).toHaveLength(2);
    for (const a of dlq)
      expect([a.MetricName, a.Threshold, a.ComparisonOperator]).toEqual([
        "ApproximateNumberOfMessagesVisible",
        1,
        "GreaterThanOrEqualToThreshold",
      ]);
  });

  test("state machine failures, time-outs, and duration above its anomaly band", () => {
    expect(named("RunsFailed").map((a) => a.MetricName)).toEqual(["ExecutionsFailed"]);
    expect(named("RunsTimedOut").map((a) => a.MetricName)).toEqual(["ExecutionsTimedOut"]);
    const [band] = named("RunDurationAnomaly");
    expect(band.ComparisonOperator).toBe("GreaterThanUpperThreshold");
    expect(band.Metrics.find((m: CfnValue) => m.MetricStat)?.MetricStat.Metric.MetricName).toBe("ExecutionTime");
    expect(band.Metrics.find((m: CfnValue) => m.Expression)?.Expression).toMatch(/^ANOMALY_DETECTION_BAND\(/);
  });

  test("EMR job failures and duration, extraction throughput below its band, Athena bytes scanned", () => {
    const [failed] = named("SparkJobsFailed");
    expect([failed.Namespace, failed.MetricName]).toEqual(["AWS/EMRServerless", "FailedJobs"]);
    const [duration] = named("SparkJobDuration");
    expect([duration.MetricName, duration.Threshold]).toEqual([
      "ServiceIntegrationRunTime",
      config.monitoring.emrJobMaxDurationMinutes * 60_000,
    ]);
    const [throughput] = named("ExtractionThroughputAnomaly");
    expect(throughput.ComparisonOperator).toBe("LessThanLowerThreshold");
    const stat = throughput.Metrics.find((m: CfnValue) => m.MetricStat).MetricStat.Metric;
    expect([stat.Namespace, stat.MetricName]).toEqual(["FhirLakehouse", "step_throughput"]);
    const [athena] = named("AthenaBytesScanned");
    expect([athena.Namespace, athena.MetricName, athena.Threshold]).toEqual([
      "AWS/Athena",
      "ProcessedBytes",
      config.monitoring.athenaBytesScannedAlarm,
    ]);
  });

  test("a dashboard exists", () => {
    templates.monitoring.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
  });
});

describe("outputs for the CLI", () => {
  test("every documented output exists in its stack with its stable export name, and the outputs-file reader finds them all", () => {
    const file: Record<string, Record<string, string>> = {};
    for (const [key, concern] of Object.entries(STACK_OUTPUTS) as [StackOutputKey, keyof PipelineStacks][]) {
      const out = templates[concern].toJSON().Outputs[key];
      expect({ key, exported: out?.Export?.Name }).toEqual({ key, exported: exportName(config.name, key) });
      (file[stackName(config.name, concern)] ??= {})[key] = String(placeholder(out.Value));
    }
    const outputs = outputsFromOutputsFile(config.name, file);
    expect(outputs.StateMachineArn).toMatch(/^<Ref:Pipeline/);
    expect(outputs.BronzeUri).toMatch(/^s3:\/\/<Ref:BronzeBucket.*>\/bronze$/);
  });
});

describe("compliance", () => {
  test("cdk-nag AwsSolutions and HIPAA.Security report nothing unacknowledged in any stack", () => {
    const rule = /^(AwsSolutions|HIPAA\.Security)-|CdkNagValidationFailure/;
    const nagged = Object.values(messages)
      .flat()
      .filter((m) => String(m.entry.data).match(rule));
    // The packs did run: their acknowledgements are in the templates (next test), and a finding
    // would be an error or warning message of its stack.
    expect(nagged.map((m) => `${m.level} ${m.id}: ${String(m.entry.data).slice(0, 100)}`)).toEqual([]);
    for (const [name, list] of Object.entries(messages)) {
      expect({ name, errors: list.filter((m) => m.level === "error").map((m) => String(m.entry.data).slice(0, 100)) }).toEqual({
        name,
        errors: [],
      });
    }
  });

  test("both packs ran over every stack: their reports hold compliant and acknowledged rules, nothing else", () => {
    const reports = fs.readdirSync(outdir).filter((f) => f.endsWith("-NagReport.csv"));
    expect(reports.sort()).toEqual(
      ["AwsSolutions", "HIPAA.Security"]
        .flatMap((pack) => Object.values(stacks).map((st) => `${pack}--${st.stackName}-NagReport.csv`))
        .sort(),
    );
    const compliance: Record<string, number> = {};
    for (const f of reports) {
      for (const line of fs.readFileSync(path.join(outdir, f), "utf8").trim().split("\n").slice(1)) {
        const c = line.split('","')[2];
        compliance[c] = (compliance[c] ?? 0) + 1;
      }
    }
    expect(Object.keys(compliance).sort()).toEqual(["Compliant", "Suppressed"]);
    expect(compliance.Compliant).toBeGreaterThan(100);
  });

  test("every acknowledgement carries a reason", () => {
    let count = 0;
    for (const t of Object.values(templates)) {
      for (const [, r] of Object.entries(t.toJSON().Resources) as [string, CfnValue][]) {
        for (const s of r.Metadata?.cdk_nag?.rules_to_suppress ?? []) {
          count++;
          expect(String(s.reason).length).toBeGreaterThan(60);
        }
      }
    }
    expect(count).toBeGreaterThan(10);
  });
});
