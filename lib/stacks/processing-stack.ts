// Processing: the EMR Serverless Spark application (release, capacity and auto-stop from config,
// in the VPC's isolated subnets), its least-privilege job role, and the spark-jobs package as an
// asset. The per-job sparkSubmitParameters are built from config by lib/core/spark-conf.ts when the
// orchestration stack renders the state machine.
import { Aws, CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as emrs from "aws-cdk-lib/aws-emrserverless";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import * as path from "node:path";
import type { PipelineConfig } from "../../config/schema";
import { LAKE_CONTRACT } from "../core/lake-contract";
import { emrWorkerConfiguration } from "../core/spark-conf";
import { exportName, type StackOutputKey } from "../core/stack-outputs";
import { SparkJobPackage } from "../constructs/spark-job-package";
import { SUBNETS } from "./ingestion-stack";
import { acknowledgeInlinePolicy, wildcardResource } from "./nag-acknowledgements";
import type { LakeBuckets } from "./storage-stack";
import { EMR_LOGS_PREFIX } from "./storage-stack";

export interface ProcessingStackProps extends StackProps {
  readonly config: PipelineConfig;
  readonly key: kms.IKey;
  readonly buckets: Pick<LakeBuckets, "bronze" | "silver" | "gold" | "metrics">;
  readonly vpc: ec2.IVpc;
  /** Roles that read EMR job runs (PublishMetrics: billed utilisation per run). */
  readonly jobRunReaders: iam.IRole[];
}

const SPARK_JOBS_SRC = path.resolve(__dirname, "..", "..", "spark-jobs", "src");

export class ProcessingStack extends Stack {
  readonly application: emrs.CfnApplication;
  readonly jobRole: iam.Role;
  readonly sparkPackage: SparkJobPackage;

  constructor(scope: Construct, id: string, props: ProcessingStackProps) {
    super(scope, id, props);
    const { config, key, buckets } = props;
    const p = config.processing;

    const sparkSg = new ec2.SecurityGroup(this, "SparkSecurityGroup", {
      vpc: props.vpc,
      description: "EMR Serverless Spark workers: each other, and HTTPS to the VPC endpoints; no internet",
      allowAllOutbound: false,
    });
    sparkSg.addIngressRule(sparkSg, ec2.Port.allTcp(), "Spark driver and executors talk to each other");
    sparkSg.addEgressRule(sparkSg, ec2.Port.allTcp(), "Spark driver and executors talk to each other");
    sparkSg.addEgressRule(
      ec2.Peer.ipv4(config.network.vpcCidr),
      ec2.Port.tcp(443),
      "AWS service endpoints in the VPC (S3, Glue, KMS, STS, logs)",
    );

    this.sparkPackage = new SparkJobPackage(this, "SparkJobs", { sourceDir: SPARK_JOBS_SRC });

    // --- The job role: the lake prefixes, the two Glue databases, the key -----------------------------
    this.jobRole = new iam.Role(this, "JobRole", {
      assumedBy: new iam.ServicePrincipal("emr-serverless.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID } },
      }),
      description: "EMR Serverless job runtime role of the silver, gold and maintenance jobs",
    });
    const L = LAKE_CONTRACT.layers;
    // Unconditioned list: Spark and Iceberg probe keys that may not exist, and S3 answers those
    // with 403 unless the caller may list the bucket (a prefix condition does not count).
    const list = (bucket: s3.IBucket) => new iam.PolicyStatement({ actions: ["s3:ListBucket"], resources: [bucket.bucketArn] });
    const statements = [
      new iam.PolicyStatement({ sid: "ReadBronze", actions: ["s3:GetObject"], resources: [buckets.bronze.arnForObjects(`${L.bronze}/*`)] }),
      list(buckets.bronze),
      new iam.PolicyStatement({
        sid: "IcebergTables",
        actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        resources: [buckets.silver.arnForObjects(`${L.silver}/*`), buckets.gold.arnForObjects(`${L.gold}/*`)],
      }),
      list(buckets.silver),
      list(buckets.gold),
      new iam.PolicyStatement({
        sid: "WriteMetricsAndLogs",
        actions: ["s3:PutObject", "s3:AbortMultipartUpload"],
        resources: [
          buckets.metrics.arnForObjects(`${L.metrics}/${LAKE_CONTRACT.metrics.dir}/*`),
          buckets.metrics.arnForObjects(`${EMR_LOGS_PREFIX}/*`),
        ],
      }),
      new iam.PolicyStatement({
        sid: "GlueCatalogOfTheLake",
        actions: [
          "glue:GetDatabase",
          "glue:GetDatabases",
          "glue:GetTable",
          "glue:GetTables",
          "glue:CreateTable",
          "glue:UpdateTable",
          "glue:DeleteTable",
          "glue:GetPartitions",
          "glue:BatchGetPartition",
        ],
        resources: [
          `arn:${Aws.PARTITION}:glue:${Aws.REGION}:${Aws.ACCOUNT_ID}:catalog`,
          ...[LAKE_CONTRACT.silver.namespace, LAKE_CONTRACT.gold.namespace].flatMap((db) => [
            `arn:${Aws.PARTITION}:glue:${Aws.REGION}:${Aws.ACCOUNT_ID}:database/${db}`,
            `arn:${Aws.PARTITION}:glue:${Aws.REGION}:${Aws.ACCOUNT_ID}:table/${db}/*`,
          ]),
        ],
      }),
      new iam.PolicyStatement({ sid: "LakeKey", actions: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], resources: [key.keyArn] }),
    ];
    for (const st of statements) this.jobRole.addToPolicy(st);
    this.sparkPackage.grantRead(this.jobRole);

    // --- The application ---------------------------------------------------------------------------
    const driver = emrWorkerConfiguration(p.spark.driverCores, p.spark.driverMemory);
    const executor = emrWorkerConfiguration(p.spark.executorCores, p.spark.executorMemory);
    const initialCapacity: emrs.CfnApplication.InitialCapacityConfigKeyValuePairProperty[] = [];
    if (p.initialCapacity.driverWorkers > 0) {
      initialCapacity.push({ key: "Driver", value: { workerCount: p.initialCapacity.driverWorkers, workerConfiguration: driver } });
    }
    if (p.initialCapacity.executorWorkers > 0) {
      initialCapacity.push({ key: "Executor", value: { workerCount: p.initialCapacity.executorWorkers, workerConfiguration: executor } });
    }
    this.application = new emrs.CfnApplication(this, "Spark", {
      name: `fhir-lakehouse-${config.name}`,
      releaseLabel: p.releaseLabel,
      type: "Spark",
      architecture: "ARM64",
      initialCapacity: initialCapacity.length ? initialCapacity : undefined,
      maximumCapacity: p.maximumCapacity,
      autoStartConfiguration: { enabled: true },
      autoStopConfiguration: { enabled: true, idleTimeoutMinutes: p.autoStopIdleMinutes },
      networkConfiguration: {
        subnetIds: props.vpc.selectSubnets({ subnetGroupName: SUBNETS.spark }).subnetIds,
        securityGroupIds: [sparkSg.securityGroupId],
      },
    });

    // PublishMetrics reads the billed vCPU/memory/storage of the run's jobs.
    const readJobRuns = new iam.ManagedPolicy(this, "ReadJobRuns", {
      description: "Read the job runs of the pipeline's Spark application (billed utilisation per run)",
      statements: [
        new iam.PolicyStatement({ actions: ["emr-serverless:GetJobRun"], resources: [`${this.application.attrArn}/jobruns/*`] }),
      ],
      roles: props.jobRunReaders,
    });

    const prefixes = [
      `${L.bronze}/*`,
      `${L.silver}/*`,
      `${L.gold}/*`,
      `${L.metrics}/${LAKE_CONTRACT.metrics.dir}/*`,
      `${EMR_LOGS_PREFIX}/*`,
    ];
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    NagSuppressions.addResourceSuppressions(
      this.jobRole,
      [
        {
          id: "AwsSolutions-IAM5",
          reason:
            "Iceberg writes data, metadata and manifest files under each table's location with generated names, and Spark reads bronze partitions by prefix; access is limited to each layer's own prefix and to the two Glue databases' tables.",
          appliesTo: [
            ...prefixes.map((pfx) => wildcardResource(`.*\\/${esc(pfx)}`)),
            wildcardResource(`arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table\\/(silver|gold)\\/\\*`),
          ],
        },
      ],
      true,
    );
    acknowledgeInlinePolicy(this.jobRole);
    NagSuppressions.addResourceSuppressions(readJobRuns, [
      {
        id: "AwsSolutions-IAM5",
        reason: "Job run ids are generated per run; GetJobRun (read-only) is limited to the runs of this one application.",
        appliesTo: [wildcardResource(".*\\/jobruns\\/\\*")],
      },
    ]);

    const out = (k: StackOutputKey, value: string, description: string) =>
      new CfnOutput(this, k, { value, description, exportName: exportName(config.name, k) });
    out("EmrApplicationId", this.application.attrApplicationId, "EMR Serverless application of the Spark jobs");
    out("EmrJobRoleArn", this.jobRole.roleArn, "Runtime role of the Spark jobs");
  }
}
