// The CDK app: `cdk synth|deploy -c env=NAME` deploys the pipeline described by config/NAME.json
// (default dev; a path to a .json file works too). Synthesis needs no AWS credentials: the stacks
// are environment-agnostic. A bad config stops synth with one line per bad field.
import { App } from "aws-cdk-lib";
import { ConfigError, loadConfig } from "../config/load";
import { addComplianceChecks, addPipelineStacks } from "../lib/stacks/pipeline-app";

const app = new App();
const envName = String(app.node.tryGetContext("env") ?? "dev");
try {
  addPipelineStacks(app, loadConfig(envName));
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  throw err;
}
addComplianceChecks(app);
