// Ingestion: the VPC the extractors run in (egress only to Epic on 443 through NAT, AWS services
// through interface endpoints), the Epic private key's secret, and the extractor Lambdas: the five
// Step Functions steps and the two SQS-fed workers (bulk file downloads, search crawling).
import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import type { PipelineConfig } from "../../config/schema";
import { FUNCTION_ENV, functionConfig } from "../core/function-environment";
import { LAKE_CONTRACT } from "../core/lake-contract";
import { LAMBDA_STEPS, type LakeLocations, type LambdaStepName } from "../core/pipeline-steps";
import { exportName, type StackOutputKey } from "../core/stack-outputs";
import { LAMBDA_TIMEOUT_SECONDS } from "../core/state-machine-definition";
import { PipelineFunction } from "../constructs/pipeline-function";
import { ThrottledExtractor } from "../constructs/throttled-extractor";
import { acknowledgeExtractorFunction, acknowledgeInlinePolicy, acknowledgeLambdaDurationReads } from "./nag-acknowledgements";

export interface IngestionStackProps extends StackProps {
  readonly config: PipelineConfig;
  readonly key: kms.IKey;
  readonly bronzeBucket: s3.IBucket;
  readonly metricsBucket: s3.IBucket;
  readonly lake: LakeLocations;
}

/** Subnet group names of the VPC. */
export const SUBNETS = { public: "nat", extractors: "extractors", spark: "spark" } as const;

/** Key prefixes inside the bronze bucket (the bronze layer lives under bronze/). */
const BRONZE = LAKE_CONTRACT.layers.bronze;
const RUNS_PREFIX = `${BRONZE}/${LAKE_CONTRACT.bronze.runsDir}`;
const DATA_PREFIX = `${BRONZE}/resource_type=`;
const REJECTS_PREFIX = `${BRONZE}/${LAKE_CONTRACT.bronze.rejectsDir}`;
const METRICS_PREFIX = `${LAKE_CONTRACT.layers.metrics}/${LAKE_CONTRACT.metrics.dir}`;

/**
 * Lake access of one function: the bronze key prefixes it may read, write (put, abort uploads)
 * and delete (a worker removes the parts of a failed attempt: units are all-or-nothing), and
 * whether it writes run metrics. Every function reading bronze may also list the bronze bucket.
 */
interface LakeAccess {
  readBronze: string[];
  writeBronze?: string[];
  deleteBronze?: string[];
  writeMetrics?: boolean;
}

export class IngestionStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly endpointSecurityGroup: ec2.SecurityGroup;
  readonly secret: secretsmanager.Secret;
  readonly stepFunctions: Record<LambdaStepName, PipelineFunction>;
  readonly download: ThrottledExtractor;
  readonly search: ThrottledExtractor;

  constructor(scope: Construct, id: string, props: IngestionStackProps) {
    super(scope, id, props);
    const { config, key } = props;
    const logRetention = logs.RetentionDays.ONE_YEAR;

    // --- Network -------------------------------------------------------------------------------
    this.vpc = new ec2.Vpc(this, "Vpc", {
      ipAddresses: ec2.IpAddresses.cidr(config.network.vpcCidr),
      maxAzs: config.network.maxAzs,
      natGateways: config.network.natGateways,
      subnetConfiguration: [
        { name: SUBNETS.public, subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: SUBNETS.extractors, subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: SUBNETS.spark, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 },
      ],
      // Nothing uses the default security group; CDK empties its rules after creation.
      restrictDefaultSecurityGroup: true,
    });
    NagSuppressions.addResourceSuppressions(
      this.vpc.publicSubnets.map((sn) => sn.node.findChild("DefaultRoute")),
      [
        {
          id: "HIPAA.Security-VPCNoUnrestrictedRouteToIGW",
          reason:
            "These are the NAT subnets: only the NAT gateways live there (no public IP is mapped on launch), and their route to the internet gateway is how the extractors reach Epic; the extractors' security group allows 443 to config.network.epicEgressCidrs only.",
        },
      ],
    );
    const flowLogs = new logs.LogGroup(this, "FlowLogs", {
      encryptionKey: key,
      retention: logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.vpc.addFlowLog("FlowLog", {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });

    this.endpointSecurityGroup = new ec2.SecurityGroup(this, "EndpointSecurityGroup", {
      vpc: this.vpc,
      description: "AWS service interface endpoints: HTTPS from inside the VPC only",
      allowAllOutbound: false,
    });
    this.endpointSecurityGroup.addIngressRule(ec2.Peer.ipv4(config.network.vpcCidr), ec2.Port.tcp(443), "HTTPS from the VPC");
    const endpoints: [string, ec2.InterfaceVpcEndpointAwsService][] = [
      // S3 through an interface endpoint (not a gateway) so security groups can allow it by CIDR.
      ["S3", ec2.InterfaceVpcEndpointAwsService.S3],
      ["Sqs", ec2.InterfaceVpcEndpointAwsService.SQS],
      ["SecretsManager", ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
      ["Kms", ec2.InterfaceVpcEndpointAwsService.KMS],
      ["Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
      ["Sts", ec2.InterfaceVpcEndpointAwsService.STS],
      ["Glue", ec2.InterfaceVpcEndpointAwsService.GLUE],
      // The X-Ray daemon in a VPC function uploads trace segments through the VPC.
      ["XRay", ec2.InterfaceVpcEndpointAwsService.XRAY],
      // PublishMetrics costs the run: the Spark jobs' GetJobRun and the Lambdas' Duration metrics.
      ["EmrServerless", ec2.InterfaceVpcEndpointAwsService.EMR_SERVERLESS],
      ["Monitoring", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING],
    ];
    for (const [name, service] of endpoints) {
      this.vpc.addInterfaceEndpoint(`${name}Endpoint`, {
        service,
        privateDnsEnabled: true,
        ...(name === "S3"
          ? { privateDnsOnlyForInboundResolverEndpoint: ec2.VpcEndpointPrivateDnsOnlyForInboundResolverEndpoint.ALL_RESOLVERS }
          : {}),
        subnets: { subnetGroupName: SUBNETS.extractors },
        securityGroups: [this.endpointSecurityGroup],
        open: false,
      });
    }

    const extractorSg = new ec2.SecurityGroup(this, "ExtractorSecurityGroup", {
      vpc: this.vpc,
      description: "Extractor functions: HTTPS to Epic and to the VPC endpoints, nothing else",
      allowAllOutbound: false,
    });
    for (const cidr of config.network.epicEgressCidrs)
      extractorSg.addEgressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), `Epic FHIR/OAuth at ${cidr}`);
    extractorSg.addEgressRule(ec2.Peer.ipv4(config.network.vpcCidr), ec2.Port.tcp(443), "AWS service endpoints in the VPC");

    // --- The Epic private key -------------------------------------------------------------------
    this.secret = new secretsmanager.Secret(this, "EpicPrivateKey", {
      secretName: config.epic.privateKeySecretName,
      description: `Epic backend-services private key (PEM) for client ${config.epic.clientId}. Put it with: aws secretsmanager put-secret-value --secret-id ${config.epic.privateKeySecretName} --secret-string file://private-key.pem`,
      encryptionKey: key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    NagSuppressions.addResourceSuppressions(this.secret, [
      {
        id: "AwsSolutions-SMG4",
        reason:
          "The Epic private key is rotated by registering a new public key with the Epic app (JWKS or upload) and then putting the new PEM here; Secrets Manager cannot rotate a key Epic must know about.",
      },
      {
        id: "HIPAA.Security-SecretsManagerRotationEnabled",
        reason:
          "Rotation of the Epic private key requires registering the new public key with Epic first (see docs/runbooks.md); it cannot be automatic.",
      },
    ]);

    // --- Functions ------------------------------------------------------------------------------
    const common = {
      encryptionKey: key,
      vpc: this.vpc,
      vpcSubnets: { subnetGroupName: SUBNETS.extractors },
      securityGroup: extractorSg,
      logRetention,
    };
    const baseEnv = {
      [FUNCTION_ENV.config]: JSON.stringify(functionConfig(config)),
      [FUNCTION_ENV.bronzeUri]: props.lake.bronze,
      [FUNCTION_ENV.metricsUri]: props.lake.metrics,
      [FUNCTION_ENV.epicPrivateKeySecretArn]: this.secret.secretArn,
    };
    const workerTimeout = Duration.minutes(15);
    // Memory per function, for the LambdaFunctions output (GB-seconds = Duration x memory).
    const memoryMb = new Map<lambda.IFunction, number>();
    const extractor = (id: string, handlerName: string, description: string, memorySize: number) =>
      new ThrottledExtractor(this, id, {
        ...common,
        handlerName,
        description,
        timeout: workerTimeout,
        memorySize,
        concurrency: config.extraction.concurrency,
        batchSize: 1,
        maxReceiveCount: 3,
        environment: baseEnv,
      });
    this.download = extractor("Download", "download-file", "Downloads one bulk export output file into bronze", 2048);
    this.search = extractor("Search", "search-worker", "Crawls one batch of patients by search into bronze", 1024);
    memoryMb.set(this.download.worker.function, 2048);
    memoryMb.set(this.search.worker.function, 1024);

    const queueEnv = {
      [FUNCTION_ENV.downloadQueueUrl]: this.download.queue.queueUrl,
      [FUNCTION_ENV.searchQueueUrl]: this.search.queue.queueUrl,
      [FUNCTION_ENV.downloadDlqUrl]: this.download.deadLetterQueue.queueUrl,
      [FUNCTION_ENV.searchDlqUrl]: this.search.deadLetterQueue.queueUrl,
    };
    const parallel = config.orchestration.maxParallelGroups;
    const step = (name: LambdaStepName, description: string, memorySize: number, reserved: number) => {
      const fn = new PipelineFunction(this, name, {
        ...common,
        handlerName: LAMBDA_STEPS[name],
        description,
        timeout: Duration.seconds(LAMBDA_TIMEOUT_SECONDS[name]),
        memorySize,
        reservedConcurrentExecutions: reserved,
        environment: { ...baseEnv, ...queueEnv },
      });
      memoryMb.set(fn.function, memorySize);
      return fn;
    };
    this.stepFunctions = {
      BulkKickOff: step("BulkKickOff", "Kicks off a Group bulk export at Epic", 256, parallel),
      PollBulkStatus: step("PollBulkStatus", "Polls a bulk export's status (honours Retry-After)", 256, parallel),
      FanOut: step("FanOut", "Enqueues a run's work units (bulk output files or patient batches)", 512, parallel),
      CheckDrained: step("CheckDrained", "Reports whether every enqueued unit of a run is accounted for; writes the run manifest", 512, 2),
      PublishMetrics: step("PublishMetrics", "Writes the run's metrics (contract Parquet and CloudWatch)", 1024, 2),
    };

    // --- Access, per function and per prefix ------------------------------------------------------
    const s = this.stepFunctions;
    const access: [PipelineFunction, LakeAccess][] = [
      // Run records: export state, plans, unit records, the run manifest, the finished-runs index.
      [s.BulkKickOff, { readBronze: [RUNS_PREFIX], writeBronze: [RUNS_PREFIX] }],
      [s.PollBulkStatus, { readBronze: [RUNS_PREFIX], writeBronze: [RUNS_PREFIX] }],
      [s.FanOut, { readBronze: [RUNS_PREFIX], writeBronze: [RUNS_PREFIX] }],
      [s.CheckDrained, { readBronze: [RUNS_PREFIX], writeBronze: [RUNS_PREFIX] }],
      [s.PublishMetrics, { readBronze: [RUNS_PREFIX], writeMetrics: true }],
      // The workers: resource parts and rejects, and their unit records.
      [
        this.download.worker,
        { readBronze: [RUNS_PREFIX], writeBronze: [DATA_PREFIX, REJECTS_PREFIX, RUNS_PREFIX], deleteBronze: [DATA_PREFIX, REJECTS_PREFIX] },
      ],
      [
        this.search.worker,
        { readBronze: [RUNS_PREFIX], writeBronze: [DATA_PREFIX, REJECTS_PREFIX, RUNS_PREFIX], deleteBronze: [DATA_PREFIX, REJECTS_PREFIX] },
      ],
    ];
    for (const [fn, a] of access) this.grantLake(fn, a, props, key);

    // CheckDrained deletes the run's bulk jobs at Epic and enqueues the shared units of a search run.
    const needsEpic = [s.BulkKickOff, s.PollBulkStatus, s.FanOut, s.CheckDrained, this.download.worker, this.search.worker];
    // Granted on the role (Secret.grantRead would put the role into the key policy, in the storage stack).
    for (const fn of needsEpic) {
      fn.role.addToPolicy(
        new iam.PolicyStatement({
          sid: "ReadEpicKey",
          actions: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
          resources: [this.secret.secretArn],
        }),
      );
      fn.role.addToPolicy(
        new iam.PolicyStatement({
          sid: "DecryptEpicKey",
          actions: ["kms:Decrypt"],
          resources: [key.keyArn],
          conditions: { StringEquals: { "kms:ViaService": `secretsmanager.${Aws.REGION}.amazonaws.com` } },
        }),
      );
    }
    // Explicit actions (grantSendMessages would add kms:GenerateDataKey* / ReEncrypt* wildcards).
    for (const fn of [s.FanOut, s.CheckDrained]) {
      fn.role.addToPolicy(
        new iam.PolicyStatement({
          sid: "EnqueueWorkUnits",
          actions: ["sqs:SendMessage"],
          resources: [this.download.queue.queueArn, this.search.queue.queueArn],
        }),
      );
      fn.role.addToPolicy(
        new iam.PolicyStatement({ sid: "EncryptWorkUnits", actions: ["kms:GenerateDataKey", "kms:Decrypt"], resources: [key.keyArn] }),
      );
    }
    const queueArns = [this.download, this.search].flatMap((e) => [e.queue.queueArn, e.deadLetterQueue.queueArn]);
    for (const fn of [s.FanOut, s.CheckDrained]) {
      fn.role.addToPolicy(new iam.PolicyStatement({ sid: "QueueDepths", actions: ["sqs:GetQueueAttributes"], resources: queueArns }));
    }

    // PublishMetrics records the run's cost: each function's AWS/Lambda Duration from CloudWatch
    // (GetMetricStatistics has no resource-level permissions: "*" is the only resource it takes).
    // Its own name and memory come from the Lambda runtime (a function cannot name itself here).
    const deployedFunctions = (fns: Record<string, lambda.IFunction>) =>
      Stack.of(this).toJsonString(Object.entries(fns).map(([role, fn]) => ({ role, name: fn.functionName, memoryMb: memoryMb.get(fn) })));
    const others = Object.fromEntries(Object.entries(this.allFunctions).filter(([role]) => role !== "PublishMetrics"));
    s.PublishMetrics.function.addEnvironment(FUNCTION_ENV.lambdaFunctions, deployedFunctions(others));
    s.PublishMetrics.role.addToPolicy(
      new iam.PolicyStatement({ sid: "LambdaDurations", actions: ["cloudwatch:GetMetricStatistics"], resources: ["*"] }),
    );
    acknowledgeLambdaDurationReads(s.PublishMetrics);

    for (const fn of Object.values(s)) acknowledgeExtractorFunction(fn, wildcards(fn, access), "step-functions");
    for (const fn of [...Object.values(s), this.download.worker, this.search.worker]) acknowledgeInlinePolicy(fn.role);
    acknowledgeInlinePolicy(this.vpc.node.findChild("FlowLog"));
    for (const fn of [this.download.worker, this.search.worker]) acknowledgeExtractorFunction(fn, wildcards(fn, access), "sqs");

    const out = (key: StackOutputKey, value: string, description: string) =>
      new CfnOutput(this, key, { value, description, exportName: exportName(config.name, key) });
    out("DownloadQueueUrl", this.download.queue.queueUrl, "Work queue of bulk output files");
    out("DownloadDeadLetterQueueUrl", this.download.deadLetterQueue.queueUrl, "Dead-letter queue of bulk output files");
    out("SearchQueueUrl", this.search.queue.queueUrl, "Work queue of patient batches (search mode)");
    out("SearchDeadLetterQueueUrl", this.search.deadLetterQueue.queueUrl, "Dead-letter queue of patient batches");
    out("EpicPrivateKeySecretArn", this.secret.secretArn, "Secret to put the Epic private key (PEM) in");
    out(
      "LambdaFunctions",
      deployedFunctions(this.allFunctions),
      "Extractor Lambdas as JSON [{role, name, memoryMb}]: CloudWatch Duration x memory = the run's GB-seconds",
    );
  }

  /** The functions behind the state machine's Lambda steps, by step name. */
  get stepFunctionHandlers(): Record<LambdaStepName, lambda.IFunction> {
    const s = this.stepFunctions;
    return {
      BulkKickOff: s.BulkKickOff.function,
      PollBulkStatus: s.PollBulkStatus.function,
      FanOut: s.FanOut.function,
      CheckDrained: s.CheckDrained.function,
      PublishMetrics: s.PublishMetrics.function,
    };
  }

  /** Every function, by step name, including the two SQS workers. */
  get allFunctions(): Record<string, lambda.IFunction> {
    return {
      ...Object.fromEntries(Object.entries(this.stepFunctions).map(([k, f]) => [k, f.function])),
      DownloadFile: this.download.worker.function,
      SearchWorker: this.search.worker.function,
    };
  }

  private grantLake(fn: PipelineFunction, a: LakeAccess, props: IngestionStackProps, key: kms.IKey): void {
    const bronze = props.bronzeBucket;
    const objects = (prefixes: string[] | undefined) =>
      (prefixes ?? []).map((p) => bronze.arnForObjects(p.endsWith("=") ? `${p}*` : `${p}/*`));
    fn.role.addToPolicy(
      new iam.PolicyStatement({ sid: "ReadBronzePrefixes", actions: ["s3:GetObject"], resources: objects(a.readBronze) }),
    );
    if (a.writeBronze?.length) {
      fn.role.addToPolicy(
        new iam.PolicyStatement({
          sid: "WriteBronzePrefixes",
          actions: ["s3:PutObject", "s3:AbortMultipartUpload"],
          resources: objects(a.writeBronze),
        }),
      );
    }
    if (a.deleteBronze?.length) {
      fn.role.addToPolicy(
        new iam.PolicyStatement({ sid: "DeleteOwnAttemptParts", actions: ["s3:DeleteObject"], resources: objects(a.deleteBronze) }),
      );
    }
    // Unconditioned: S3 answers a missing key with 403 (not 404) unless the caller may list the
    // bucket, and a prefix condition does not apply to that check. Key names carry no PHI.
    fn.role.addToPolicy(new iam.PolicyStatement({ sid: "ListBronze", actions: ["s3:ListBucket"], resources: [bronze.bucketArn] }));
    if (a.writeMetrics) {
      fn.role.addToPolicy(
        new iam.PolicyStatement({
          sid: "WriteRunMetrics",
          actions: ["s3:PutObject", "s3:AbortMultipartUpload"],
          resources: [props.metricsBucket.arnForObjects(`${METRICS_PREFIX}/*`)],
        }),
      );
    }
    // Objects are SSE-KMS (bucket key): reading decrypts, writing generates a data key.
    fn.role.addToPolicy(
      new iam.PolicyStatement({ sid: "LakeKey", actions: ["kms:Decrypt", "kms:GenerateDataKey"], resources: [key.keyArn] }),
    );
  }
}

/** The wildcard object resources a function's lake access renders to (for its acknowledgement). */
function wildcards(fn: PipelineFunction, access: [PipelineFunction, LakeAccess][]): string[] {
  const a = access.find(([f]) => f === fn)?.[1];
  if (!a) return [];
  const esc = (p: string) => p.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const prefixes = new Set(
    [...a.readBronze, ...(a.writeBronze ?? []), ...(a.deleteBronze ?? [])].map((p) => (p.endsWith("=") ? `${p}*` : `${p}/*`)),
  );
  const out = [...prefixes].map((p) => `.*\\/${esc(p)}`);
  if (a.writeMetrics) out.push(`.*\\/${esc(`${METRICS_PREFIX}/*`)}`);
  return out;
}
