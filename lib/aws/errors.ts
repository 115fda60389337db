// Turns the errors an operator can fix (no credentials, an expired session, an environment that is
// not deployed, an unknown config name, no region) into ONE line saying what to do. Anything else
// keeps its own message, still without a stack trace (bin/fhir-pipeline.js prints only messages).

/** An error whose message is a single line telling the operator what to do. */
export class OperatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OperatorError";
  }
}

export interface ErrorContext {
  /** The --env name given on the command line. */
  envName?: string;
  /** The region in use, if known. */
  region?: string;
  /** The CloudFormation stack being read, if any. */
  stackName?: string;
}

const EXPIRED_CODES = new Set(["ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"]);
const REJECTED_CODES = new Set([
  "InvalidClientTokenId",
  "UnrecognizedClientException",
  "SignatureDoesNotMatch",
  "InvalidAccessKeyId",
  "InvalidSignatureException",
]);
const DENIED_CODES = new Set(["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"]);

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function errorCode(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string };
  return e?.Code ?? e?.name ?? e?.code ?? "";
}

/** The one-line explanation of an AWS SDK error, or undefined when it is not one an operator fixes. */
export function explainAwsError(err: unknown, ctx: ErrorContext = {}): OperatorError | undefined {
  if (err instanceof OperatorError) return err;
  const code = errorCode(err);
  const message = oneLine(String((err as Error)?.message ?? err));
  const env = ctx.envName ? ` for environment ${ctx.envName}` : "";
  const profile = process.env.AWS_PROFILE ? ` --profile ${process.env.AWS_PROFILE}` : "";

  if (
    EXPIRED_CODES.has(code) ||
    /token (included in the request )?(is|has) expired|session .*has expired|token has expired/i.test(message)
  ) {
    return new OperatorError(
      `your AWS session has expired${env}: sign in again (e.g. \`aws sso login${profile}\`, or refresh the temporary keys in your environment) and retry`,
    );
  }
  if (code === "CredentialsProviderError" || /could not load credentials/i.test(message)) {
    return new OperatorError(
      `no AWS credentials found${env}: run \`aws configure\` or \`aws sso login\`, or set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), then retry`,
    );
  }
  if (REJECTED_CODES.has(code)) {
    return new OperatorError(
      `AWS rejected the credentials${env} (${code}): check AWS_PROFILE or the access keys in your environment, then retry`,
    );
  }
  if (/region is missing/i.test(message)) {
    return new OperatorError(
      `no AWS region set${env}: pass --region REGION or set AWS_REGION to the region the environment is deployed in`,
    );
  }
  if (code === "ValidationError" && /stack with id .* does not exist/i.test(message)) {
    const stack = ctx.stackName ?? /stack with id (\S+)/i.exec(message)?.[1] ?? "";
    const where = ctx.region ? ` in ${ctx.region}` : "";
    const name = ctx.envName ?? "NAME";
    return new OperatorError(
      `environment ${name} is not deployed${where} (no CloudFormation stack ${stack}): deploy it with \`npx cdk deploy -c env=${name} --all\`, or pass --region / --outputs-file for where it is deployed`,
    );
  }
  if (DENIED_CODES.has(code)) {
    return new OperatorError(
      `access denied${env}: ${message}: use a role or profile allowed to operate the pipeline (Step Functions, Athena, EMR Serverless, CloudWatch, S3 read of the lake)`,
    );
  }
  const netCode = (err as { code?: string })?.code ?? (err as { cause?: { code?: string } })?.cause?.code;
  if (netCode && ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNRESET"].includes(netCode)) {
    return new OperatorError(`cannot reach AWS (${netCode})${env}: check your network connection and the region, then retry`);
  }
  return undefined;
}

/** Runs fn, rethrowing operator-fixable errors as one line and every other error with a one-line message. */
export async function withOperatorErrors<T>(ctx: ErrorContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const explained = explainAwsError(err, ctx);
    if (explained) throw explained;
    const e = err as Error;
    if (e instanceof Error && /\n/.test(e.message)) e.message = oneLine(e.message);
    throw err;
  }
}
