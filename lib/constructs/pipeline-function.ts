// One extractor Lambda as this system runs them: Node.js 22 on arm64, bundled locally by esbuild
// from lambdas/handlers/<name>.ts, in the VPC behind the given security group, X-Ray tracing,
// Powertools settings that keep event and response bodies (PHI) out of logs and traces, an
// encrypted log group with retention, KMS-encrypted environment, reserved concurrency, and a role
// that can write only its own log group (grants for data are added by the stack, per prefix).
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import * as fs from "node:fs";
import * as path from "node:path";

/** Repository root (this file is lib/constructs/pipeline-function.ts). */
const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const HANDLERS_DIR = path.join(REPO_ROOT, "lambdas", "handlers");

/** Powertools service name and metrics namespace: the same as lib/core/metrics.ts uses. */
export const POWERTOOLS_SERVICE = "fhir-pipeline";
export const METRICS_NAMESPACE = "FhirLakehouse";

export interface PipelineFunctionProps {
  /** File name in lambdas/handlers without .ts, e.g. "download-file"; it exports `handler`. */
  readonly handlerName: string;
  readonly description: string;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly reservedConcurrentExecutions: number;
  readonly encryptionKey: kms.IKey;
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly logRetention: logs.RetentionDays;
  readonly environment: Record<string, string>;
}

export class PipelineFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    super(scope, id);
    const entry = path.join(HANDLERS_DIR, `${props.handlerName}.ts`);
    if (!fs.existsSync(entry)) throw new Error(`Lambda handler ${path.relative(REPO_ROOT, entry)} does not exist`);

    this.logGroup = new logs.LogGroup(this, "Logs", {
      encryptionKey: props.encryptionKey,
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `Execution role of the ${props.handlerName} extractor function`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: "OwnLogGroupOnly",
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    // What AWSLambdaVPCAccessExecutionRole grants; EC2 has no resource-level permissions for these.
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: "VpcNetworkInterfaces",
        actions: [
          "ec2:CreateNetworkInterface",
          "ec2:DescribeNetworkInterfaces",
          "ec2:DescribeSubnets",
          "ec2:DeleteNetworkInterface",
          "ec2:AssignPrivateIpAddresses",
          "ec2:UnassignPrivateIpAddresses",
        ],
        resources: ["*"],
      }),
    );

    this.function = new nodejs.NodejsFunction(this, "Function", {
      entry,
      handler: "handler",
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: [props.securityGroup],
      environmentEncryption: props.encryptionKey,
      environment: {
        NODE_OPTIONS: "--enable-source-maps",
        POWERTOOLS_SERVICE_NAME: POWERTOOLS_SERVICE,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: "INFO",
        // Events and responses carry FHIR resources (PHI): never logged, never put in traces.
        POWERTOOLS_LOGGER_LOG_EVENT: "false",
        POWERTOOLS_TRACER_CAPTURE_RESPONSE: "false",
        POWERTOOLS_TRACER_CAPTURE_ERROR: "true",
        ...props.environment,
      },
      depsLockFilePath: path.join(REPO_ROOT, "package-lock.json"),
      projectRoot: REPO_ROOT,
      bundling: {
        forceDockerBundling: false,
        format: nodejs.OutputFormat.CJS,
        target: "node22",
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        tsconfig: path.join(REPO_ROOT, "tsconfig.json"),
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          // parquet-wasm loads its .wasm from the bundle's directory at run time: ship it along.
          afterBundling: (inputDir: string, outputDir: string) => [
            `if grep -q parquet_wasm_bg.wasm "${outputDir}/index.js"; then cp "${inputDir}/node_modules/parquet-wasm/node/parquet_wasm_bg.wasm" "${outputDir}/"; fi`,
          ],
        },
      },
    });
  }
}
