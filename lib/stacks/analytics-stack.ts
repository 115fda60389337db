// Analytics: the Athena workgroup analysts query gold through — settings enforced (clients cannot
// turn encryption off or write results elsewhere), results SSE-KMS in the results bucket, a
// bytes-scanned cutoff per query, metrics published — and one named query per analytics/queries/*.sql.
import { Aws, CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import * as athena from "aws-cdk-lib/aws-athena";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type { Construct } from "constructs";
import * as path from "node:path";
import type { PipelineConfig } from "../../config/schema";
import { LAKE_CONTRACT } from "../core/lake-contract";
import { exportName, type StackOutputKey } from "../core/stack-outputs";
import { AthenaNamedQueries } from "../constructs/athena-named-queries";

export interface AnalyticsStackProps extends StackProps {
  readonly config: PipelineConfig;
  readonly key: kms.IKey;
  readonly resultsBucket: s3.IBucket;
  /** Folder of the named queries' *.sql files (default analytics/queries). */
  readonly queriesDir?: string;
}

export const DEFAULT_QUERIES_DIR = path.resolve(__dirname, "..", "..", "analytics", "queries");

export class AnalyticsStack extends Stack {
  readonly workGroup: athena.CfnWorkGroup;
  readonly namedQueries: AthenaNamedQueries;

  constructor(scope: Construct, id: string, props: AnalyticsStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.workGroup = new athena.CfnWorkGroup(this, "WorkGroup", {
      name: `fhir-lakehouse-${config.name}`,
      description: `FHIR lakehouse (${config.name}): queries over the gold and silver Iceberg tables`,
      state: "ENABLED",
      recursiveDeleteOption: false,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: config.analytics.bytesScannedCutoffPerQuery,
        requesterPaysEnabled: false,
        engineVersion: { selectedEngineVersion: "Athena engine version 3" },
        resultConfiguration: {
          outputLocation: `s3://${props.resultsBucket.bucketName}/results/`,
          expectedBucketOwner: Aws.ACCOUNT_ID,
          encryptionConfiguration: { encryptionOption: "SSE_KMS", kmsKey: props.key.keyArn },
        },
      },
    });

    this.namedQueries = new AthenaNamedQueries(this, "NamedQueries", {
      queriesDir: props.queriesDir ?? DEFAULT_QUERIES_DIR,
      workGroup: this.workGroup.name,
      database: LAKE_CONTRACT.gold.namespace,
    });
    for (const q of this.namedQueries.queries) q.addDependency(this.workGroup);

    const out = (k: StackOutputKey, value: string, description: string) =>
      new CfnOutput(this, k, { value, description, exportName: exportName(config.name, k) });
    out("AthenaWorkGroup", this.workGroup.name, "Athena workgroup of the lake");
  }
}
