// What an operator sees when something is wrong: ONE line saying what to do, never a stack trace.
// The CLI runs as a child process; AWS is moto on 127.0.0.1 (an environment that is not deployed),
// or a tiny HTTP server on 127.0.0.1 answering as AWS does for an expired session token.
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { explainAwsError, OperatorError } from "../../lib/aws/errors";
import { emulatorEnv, runCli, type CliResult } from "./cli-process";
import { startMoto, type MotoServer } from "./moto-server";

let moto: MotoServer;
let expiredServer: http.Server;
let expiredEndpoint: string;

/** Answers every request as AWS does once the session token has expired (query and JSON protocols). */
function startExpiredTokenServer(): Promise<void> {
  expiredServer = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const json = String(req.headers["content-type"] ?? "").includes("json");
      if (json) {
        res.writeHead(400, { "content-type": "application/x-amz-json-1.0", "x-amzn-errortype": "ExpiredTokenException" });
        res.end(JSON.stringify({ __type: "ExpiredTokenException", message: "The security token included in the request is expired" }));
      } else {
        res.writeHead(403, { "content-type": "text/xml" });
        res.end(
          '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>ExpiredToken</Code>' +
            "<Message>The security token included in the request is expired</Message></Error><RequestId>r1</RequestId></ErrorResponse>",
        );
      }
    });
  });
  return new Promise((resolve) =>
    expiredServer.listen(0, "127.0.0.1", () => {
      expiredEndpoint = `http://127.0.0.1:${(expiredServer.address() as AddressInfo).port}`;
      resolve();
    }),
  );
}

beforeAll(async () => {
  moto = await startMoto();
  await startExpiredTokenServer();
});

afterAll(async () => {
  await moto?.stop();
  await new Promise((resolve) => expiredServer?.close(resolve));
});

/** No credentials anywhere the SDK looks (environment, shared files, SSO, instance metadata). */
const NO_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
  AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
  AWS_CONFIG_FILE: "/nonexistent/aws-config",
  AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
  AWS_EC2_METADATA_DISABLED: "true",
};

function expectOneLine(result: CliResult, pattern: RegExp): void {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe("");
  const lines = result.stderr.split("\n").filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^fhir-pipeline: /);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe("one-line errors", () => {
  it("an unknown environment name lists the known ones", async () => {
    const r = await runCli(["run", "--env", "staging"], emulatorEnv(moto.endpoint));
    expectOneLine(r, /unknown environment "staging": there is no config\/staging\.json \(known: dev, local, prod\)/);
  });

  it("an environment that is not deployed says how to deploy it", async () => {
    const r = await runCli(["status", "--env", "prod"], emulatorEnv(moto.endpoint));
    expectOneLine(
      r,
      /environment prod is not deployed in us-east-1 \(no CloudFormation stack \S+\): deploy it with `npx cdk deploy -c env=prod --all`/,
    );
  });

  it("missing credentials say how to sign in", async () => {
    const r = await runCli(["status", "--env", "dev"], { ...emulatorEnv(moto.endpoint), ...NO_CREDENTIALS });
    expectOneLine(r, /no AWS credentials found for environment dev: run `aws configure` or `aws sso login`/);
  });

  it("an expired session says to sign in again", async () => {
    const r = await runCli(["report", "--env", "dev"], emulatorEnv(expiredEndpoint));
    expectOneLine(r, /your AWS session has expired for environment dev: sign in again/);
  });

  it("a missing region says to pass --region", async () => {
    const r = await runCli(["query", "--env", "dev", "SELECT 1"], {
      ...emulatorEnv(moto.endpoint),
      AWS_REGION: undefined,
      AWS_DEFAULT_REGION: undefined,
      AWS_CONFIG_FILE: "/nonexistent/aws-config",
    });
    expectOneLine(r, /no AWS region set for environment dev: pass --region REGION or set AWS_REGION/);
  });

  it("a missing outputs file says how to write it", async () => {
    const r = await runCli(["run", "--env", "dev", "--outputs-file", "/nonexistent/cdk-outputs.json"], emulatorEnv(moto.endpoint));
    expectOneLine(
      r,
      /outputs file \/nonexistent\/cdk-outputs\.json does not exist: write it with `npx cdk deploy -c env=dev --all --outputs-file/,
    );
  });
});

describe("explainAwsError", () => {
  it("maps the SDK's error shapes", () => {
    const named = (name: string, message = "x") => Object.assign(new Error(message), { name });
    expect(explainAwsError(named("ExpiredTokenException"))!.message).toMatch(/session has expired/);
    expect(explainAwsError(named("ExpiredToken"))!.message).toMatch(/session has expired/);
    expect(
      explainAwsError(named("CredentialsProviderError", "Token is expired. To refresh this SSO session run 'aws sso login'"))!.message,
    ).toMatch(/session has expired/);
    expect(explainAwsError(named("CredentialsProviderError", "Could not load credentials from any providers"))!.message).toMatch(
      /no AWS credentials/,
    );
    expect(explainAwsError(named("UnrecognizedClientException"))!.message).toMatch(/AWS rejected the credentials/);
    expect(
      explainAwsError(named("ValidationError", "Stack with id fhir-lakehouse-x-storage does not exist"), { envName: "x" })!.message,
    ).toMatch(/environment x is not deployed \(no CloudFormation stack fhir-lakehouse-x-storage\)/);
    expect(explainAwsError(named("ThrottlingException"))).toBeUndefined();
    const op = new OperatorError("already explained");
    expect(explainAwsError(op)).toBe(op);
  });
});
