// The spark-jobs Python package as EMR Serverless needs it: the package source zipped (put on the
// driver's and executors' PYTHONPATH via spark.submit.pyFiles) and one entry-point script, both
// uploaded as CDK assets to the bootstrap bucket. Local-only artefacts (.venv, jars, caches, tests)
// are left out.
import { Aws } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as s3assets from "aws-cdk-lib/aws-s3-assets";
import { Construct } from "constructs";
import * as path from "node:path";

export interface SparkJobPackageProps {
  /** Directory holding the importable package(s), e.g. spark-jobs/src. */
  readonly sourceDir: string;
  /**
   * The Python file spark-submit runs. Default: spark-entrypoint.py beside this file, which runs
   * fhir_lakehouse.<job>_job.main with the rest of the arguments.
   */
  readonly entryPointFile?: string;
}

export const SPARK_PACKAGE_EXCLUDES = [
  "**/.venv",
  "**/.jars",
  "**/__pycache__",
  "**/*.pyc",
  "**/*.egg-info",
  "**/.pytest_cache",
  "**/.ruff_cache",
  "**/tests",
];

export class SparkJobPackage extends Construct {
  readonly package: s3assets.Asset;
  readonly entryPoint: s3assets.Asset;

  constructor(scope: Construct, id: string, props: SparkJobPackageProps) {
    super(scope, id);
    this.package = new s3assets.Asset(this, "Package", { path: props.sourceDir, exclude: SPARK_PACKAGE_EXCLUDES });
    this.entryPoint = new s3assets.Asset(this, "EntryPoint", { path: props.entryPointFile ?? path.join(__dirname, "spark-entrypoint.py") });
  }

  /** s3:// URI of the zipped package (a .zip object: spark.submit.pyFiles). */
  get pyFilesUri(): string {
    return this.package.s3ObjectUrl;
  }

  /** s3:// URI of the entry-point script. */
  get entryPointUri(): string {
    return this.entryPoint.s3ObjectUrl;
  }

  /** Lets a job role read exactly these two objects (Asset.grantRead would open the whole assets bucket). */
  grantRead(grantee: iam.IGrantable): void {
    const arn = (a: s3assets.Asset) => `arn:${Aws.PARTITION}:s3:::${a.s3BucketName}/${a.s3ObjectKey}`;
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: "ReadSparkJobsPackage",
        actions: ["s3:GetObject"],
        resources: [arn(this.package), arn(this.entryPoint)],
      }),
    );
  }
}
