// The stack names and output keys the CLI reads. TEMPORARY bridge: these must come from the
// infrastructure's lib/core/stack-outputs.ts (the names bin/app.ts gives the stacks and the
// CfnOutput keys they declare); this file is replaced by re-exports of it once it is committed.
export const OUTPUT_KEYS = {
  stateMachineArn: "StateMachineArn",
  bronzeBucket: "BronzeBucketName",
  silverBucket: "SilverBucketName",
  goldBucket: "GoldBucketName",
  metricsBucket: "MetricsBucketName",
  athenaResultsBucket: "AthenaResultsBucketName",
  athenaWorkgroup: "AthenaWorkgroupName",
  emrApplicationId: "EmrApplicationId",
  workQueueUrl: "WorkQueueUrl",
  deadLetterQueueUrl: "DeadLetterQueueUrl",
  alarmTopicArn: "AlarmTopicArn",
  extractorFunctionNames: "ExtractorFunctionNames",
  extractorMemoryMb: "ExtractorMemoryMb",
} as const;
export type OutputKey = keyof typeof OUTPUT_KEYS;

/** The CloudFormation stacks of an environment. */
export function stackNamesFor(configName: string): string[] {
  return ["Storage", "Ingestion", "Processing", "Orchestration", "Analytics", "Monitoring"].map((s) => `FhirLakehouse-${configName}-${s}`);
}
