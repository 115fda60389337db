// cdk-nag findings this system accepts, each with the reason it is right here. They are attached to
// the specific resources (never to a whole stack or rule), and wildcard acknowledgements list the
// exact wildcard they accept (`appliesTo`), so a new wildcard still fails synth.
import { NagSuppressions, type NagPackSuppression } from "cdk-nag";
import type { IConstruct } from "constructs";

/** A wildcard resource of exactly this shape (regex over cdk-nag's "Resource::..." rendering). */
export function wildcardResource(pattern: string): { regex: string } {
  return { regex: `/^Resource::${pattern}$/g` };
}

const X_RAY_AND_ENI =
  "X-Ray PutTraceSegments/PutTelemetryRecords and the EC2 network-interface actions a VPC function needs have no resource-level permissions in IAM; the statements carry only those actions.";

/** Findings every extractor Lambda (PipelineFunction) raises, whatever its trigger. */
export function acknowledgeExtractorFunction(fn: IConstruct, wildcardPrefixes: string[], invokedBy: "step-functions" | "sqs"): void {
  const suppressions: NagPackSuppression[] = [
    { id: "AwsSolutions-IAM5", reason: X_RAY_AND_ENI, appliesTo: ["Resource::*"] },
    {
      id: "AwsSolutions-L1",
      reason:
        "Node.js 22 (a supported LTS Lambda runtime) on purpose: the version the extractor code is bundled for (esbuild target node22) and tested on; moving to a newer runtime is a deliberate, tested change, not an automatic one.",
    },
    {
      id: "HIPAA.Security-LambdaDLQ",
      reason:
        invokedBy === "sqs"
          ? "Invoked synchronously by the SQS event source: failed messages go to the source queue's dead-letter queue (redrive policy), which is where Lambda's own DLQ would not apply."
          : "Invoked synchronously by Step Functions: a failure is retried and caught by the state machine, which notifies and fails the run; an async DLQ would never receive anything.",
    },
  ];
  if (wildcardPrefixes.length) {
    suppressions.push({
      id: "AwsSolutions-IAM5",
      reason:
        "Object keys under one lake prefix are per run and per resource type, so they are granted by prefix (e.g. bronze/_runs/*); each statement is limited to this function's own prefixes and actions.",
      appliesTo: wildcardPrefixes.map(wildcardResource),
    });
  }
  NagSuppressions.addResourceSuppressions(fn, suppressions, true);
}

/**
 * Inline role policies (CDK's DefaultPolicy): every role of this system has its own, created and
 * deleted with it. Accepted per role, never stack-wide.
 */
export function acknowledgeInlinePolicy(role: IConstruct): void {
  NagSuppressions.addResourceSuppressions(
    role,
    [
      {
        id: "HIPAA.Security-IAMNoInlinePolicy",
        reason:
          "Each policy belongs to exactly one role of this pipeline (one per function, Spark job role, state machine, scheduler, flow log) and lives and dies with it; inline keeps that one-to-one binding, so a per-function lake-prefix grant can never be attached to another identity. Reuse and versioning, the rule's rationale, do not apply to per-role least-privilege grants.",
      },
    ],
    true,
  );
}

/** PublishMetrics reads the extractor functions' AWS/Lambda Duration to cost the run. */
export function acknowledgeLambdaDurationReads(fn: IConstruct): void {
  NagSuppressions.addResourceSuppressions(
    fn,
    [
      {
        id: "AwsSolutions-IAM5",
        reason:
          "cloudwatch:GetMetricStatistics has no resource-level permissions in IAM (it only accepts Resource *); the statement carries that one read-only action, used to sum the run's Lambda Duration for its cost.",
        appliesTo: ["Resource::*"],
      },
    ],
    true,
  );
}
