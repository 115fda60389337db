// A bucket as every bucket of this system must be: encrypted with the lake's KMS key (S3 Bucket
// Keys on, to keep KMS calls and cost down), TLS only, no public access, bucket-owner objects,
// versioned, with server access logs and noncurrent versions expired. PHI lives here, so the
// bucket is retained when the stack is deleted.
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";

export interface EncryptedBucketProps {
  /** The customer-managed key. Absent only for the access-log bucket (S3 cannot log into SSE-KMS). */
  readonly encryptionKey?: kms.IKey;
  /** Where S3 writes this bucket's server access logs; absent only for the access-log bucket itself. */
  readonly serverAccessLogsBucket?: s3.IBucket;
  /** Prefix of this bucket's access logs inside the log bucket (e.g. "bronze/"). */
  readonly serverAccessLogsPrefix?: string;
  /** Old object versions are deleted this long after they stop being current. */
  readonly noncurrentVersionExpiration: Duration;
  /** Extra lifecycle rules (e.g. bronze's storage-class transitions). */
  readonly lifecycleRules?: s3.LifecycleRule[];
}

export class EncryptedBucket extends Construct {
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: EncryptedBucketProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, "Bucket", {
      encryption: props.encryptionKey ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED,
      encryptionKey: props.encryptionKey,
      bucketKeyEnabled: props.encryptionKey ? true : undefined,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: props.serverAccessLogsBucket,
      serverAccessLogsPrefix: props.serverAccessLogsPrefix,
      lifecycleRules: [
        {
          id: "expire-noncurrent-versions",
          noncurrentVersionExpiration: props.noncurrentVersionExpiration,
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
        ...(props.lifecycleRules ?? []),
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
