// Storage: the lake's customer-managed KMS key (rotated yearly), the layer buckets (bronze, silver,
// gold, metrics), Athena's results bucket and the access-log bucket, and the Glue databases of the
// silver and gold Iceberg tables.
import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import * as glue from "aws-cdk-lib/aws-glue";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import type { PipelineConfig } from "../../config/schema";
import { LAKE_CONTRACT, layerUri } from "../core/lake-contract";
import type { LakeLocations } from "../core/pipeline-steps";
import { exportName, type StackOutputKey } from "../core/stack-outputs";
import { EncryptedBucket } from "../constructs/encrypted-bucket";

export interface StorageStackProps extends StackProps {
  readonly config: PipelineConfig;
}

export interface LakeBuckets {
  bronze: s3.Bucket;
  silver: s3.Bucket;
  gold: s3.Bucket;
  metrics: s3.Bucket;
  athenaResults: s3.Bucket;
  accessLogs: s3.Bucket;
}

/** Prefix of EMR Serverless job logs in the metrics bucket. */
export const EMR_LOGS_PREFIX = "emr-logs";

export class StorageStack extends Stack {
  readonly key: kms.Key;
  readonly buckets: LakeBuckets;
  /** Layer URIs: s3://{bucket}/{layer}, i.e. layerUri(s3://{bucket}, layer). */
  readonly lake: LakeLocations;
  readonly silverDatabase: glue.CfnDatabase;
  readonly goldDatabase: glue.CfnDatabase;

  constructor(scope: Construct, id: string, props: StorageStackProps) {
    super(scope, id, props);
    const { config } = props;
    const s = config.storage;

    this.key = new kms.Key(this, "LakeKey", {
      description: `FHIR lakehouse (${config.name}): encrypts the lake, queues, topics, logs and the Epic key secret`,
      enableKeyRotation: true,
      alias: `alias/fhir-lakehouse-${config.name}`,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch Logs encrypts the log groups of this account and region with the key.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "CloudWatchLogsEncryption",
        principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
        actions: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources: ["*"],
        conditions: {
          ArnLike: { "kms:EncryptionContext:aws:logs:arn": `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` },
        },
      }),
    );
    // CloudWatch alarms publish to the KMS-encrypted alarm topic.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "CloudWatchAlarmsPublishToEncryptedTopic",
        principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
        conditions: { StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID } },
      }),
    );

    const accessLogs = new EncryptedBucket(this, "AccessLogs", {
      noncurrentVersionExpiration: Duration.days(s.noncurrentVersionExpirationDays),
      lifecycleRules: [{ id: "expire-access-logs", expiration: Duration.days(s.accessLogRetentionDays) }],
    }).bucket;
    NagSuppressions.addResourceSuppressions(accessLogs, [
      { id: "AwsSolutions-S1", reason: "This is the server-access-log target of every other bucket; logging it into itself would loop." },
      {
        id: "HIPAA.Security-S3BucketLoggingEnabled",
        reason: "This is the server-access-log target of every other bucket; logging it into itself would loop.",
      },
      {
        id: "HIPAA.Security-S3DefaultEncryptionKMS",
        reason:
          "S3 server access log delivery only supports SSE-S3 on the target bucket; it holds request logs (bucket, key, requester), no PHI payloads.",
      },
      {
        id: "HIPAA.Security-S3BucketReplicationEnabled",
        reason:
          "Access logs are an audit trail kept for storage.accessLogRetentionDays in this region; cross-region copies are left to the account's backup policy.",
      },
    ]);

    const bucket = (id: string, prefix: string, lifecycleRules?: s3.LifecycleRule[]) => {
      const b = new EncryptedBucket(this, id, {
        encryptionKey: this.key,
        serverAccessLogsBucket: accessLogs,
        serverAccessLogsPrefix: `${prefix}/`,
        noncurrentVersionExpiration: Duration.days(s.noncurrentVersionExpirationDays),
        lifecycleRules,
      }).bucket;
      NagSuppressions.addResourceSuppressions(b, [
        {
          id: "HIPAA.Security-S3BucketReplicationEnabled",
          reason:
            "Every layer is reproducible: bronze from Epic (re-extract), silver/gold/metrics from bronze; versioning plus noncurrent-version retention covers accidental deletes. Cross-region replication of PHI is a per-organisation decision, not a default.",
        },
      ]);
      return b;
    };

    this.buckets = {
      bronze: bucket("Bronze", "bronze", [
        {
          id: "bronze-to-cheaper-storage",
          transitions: [
            { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(s.bronzeInfrequentAccessAfterDays) },
            { storageClass: s3.StorageClass.GLACIER, transitionAfter: Duration.days(s.bronzeGlacierAfterDays) },
          ],
        },
      ]),
      silver: bucket("Silver", "silver"),
      gold: bucket("Gold", "gold"),
      metrics: bucket("Metrics", "metrics"),
      athenaResults: bucket("AthenaResults", "athena-results", [{ id: "expire-query-results", expiration: Duration.days(30) }]),
      accessLogs,
    };

    const uri = (b: s3.IBucket, layer: keyof typeof LAKE_CONTRACT.layers) => layerUri(`s3://${b.bucketName}`, layer);
    this.lake = {
      bronze: uri(this.buckets.bronze, "bronze"),
      silver: uri(this.buckets.silver, "silver"),
      gold: uri(this.buckets.gold, "gold"),
      metrics: uri(this.buckets.metrics, "metrics"),
    };

    // Iceberg's Glue catalog: one database per lake namespace; tables default under their location.
    const database = (id: string, name: string, locationUri: string, description: string) =>
      new glue.CfnDatabase(this, id, {
        catalogId: Aws.ACCOUNT_ID,
        databaseInput: { name, locationUri, description },
      });
    this.silverDatabase = database(
      "SilverDatabase",
      LAKE_CONTRACT.silver.namespace,
      this.lake.silver,
      "FHIR lakehouse silver: current resources and SQL-on-FHIR views (Iceberg)",
    );
    this.goldDatabase = database(
      "GoldDatabase",
      LAKE_CONTRACT.gold.namespace,
      this.lake.gold,
      "FHIR lakehouse gold: analyst aggregates (Iceberg)",
    );

    const out = (key: StackOutputKey, value: string, description: string) =>
      new CfnOutput(this, key, { value, description, exportName: exportName(config.name, key) });
    out("KmsKeyArn", this.key.keyArn, "KMS key of the lake");
    out("BronzeBucketName", this.buckets.bronze.bucketName, "Bronze bucket");
    out("SilverBucketName", this.buckets.silver.bucketName, "Silver bucket (Iceberg warehouse)");
    out("GoldBucketName", this.buckets.gold.bucketName, "Gold bucket");
    out("MetricsBucketName", this.buckets.metrics.bucketName, "Metrics bucket (performance_metrics, EMR logs)");
    out("AthenaResultsBucketName", this.buckets.athenaResults.bucketName, "Athena query results bucket");
    out("AccessLogsBucketName", accessLogs.bucketName, "S3 server access logs bucket");
    out("BronzeUri", this.lake.bronze, "Bronze layer URI");
    out("SilverUri", this.lake.silver, "Silver layer URI");
    out("GoldUri", this.lake.gold, "Gold layer URI");
    out("MetricsUri", this.lake.metrics, "Metrics layer URI");
    out("GlueSilverDatabase", LAKE_CONTRACT.silver.namespace, "Glue database of the silver tables");
    out("GlueGoldDatabase", LAKE_CONTRACT.gold.namespace, "Glue database of the gold tables");
  }
}
