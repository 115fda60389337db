// The AWS SDK v3 clients the CLI uses to operate a deployed environment, created once per command
// with one region and (for tests only) one endpoint override.
import { AthenaClient } from "@aws-sdk/client-athena";
import { CloudFormationClient } from "@aws-sdk/client-cloudformation";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { EMRServerlessClient } from "@aws-sdk/client-emr-serverless";
import { S3Client } from "@aws-sdk/client-s3";
import { SFNClient } from "@aws-sdk/client-sfn";
import { SQSClient } from "@aws-sdk/client-sqs";
import { AWS_ENDPOINT_ENV } from "../core/storage";

// The SDK warns on every CLI start under Node 20 that *future* SDK versions will need Node 22; the
// lockfile pins this one, which supports Node 20, so the warning would only bury the CLI's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/**
 * Test-only: every client talks to this URL instead of AWS (the moto server the tests start on
 * 127.0.0.1), the same variable the lake's storage module and the Lambdas' clients honour.
 * Users never set it; real runs resolve endpoints from the region.
 */
export { AWS_ENDPOINT_ENV };

export interface AwsClientOptions {
  /** Region of the deployed environment; default: the SDK's chain (AWS_REGION, profile). */
  region?: string;
  /** Endpoint override; default: process.env[AWS_ENDPOINT_ENV]. */
  endpoint?: string;
}

interface ClientConfig {
  region?: string;
  endpoint?: string;
  maxAttempts: number;
}

/** Lazily created clients sharing one configuration. */
export class AwsClients {
  private readonly config: ClientConfig;
  private cache = new Map<string, unknown>();

  constructor(options: AwsClientOptions = {}) {
    const endpoint = options.endpoint ?? process.env[AWS_ENDPOINT_ENV] ?? undefined;
    // Few attempts: a CLI should say what is wrong quickly rather than retry for a minute.
    this.config = { region: options.region, endpoint: endpoint || undefined, maxAttempts: 3 };
  }

  get region(): string | undefined {
    return this.config.region;
  }

  get endpoint(): string | undefined {
    return this.config.endpoint;
  }

  private get<T>(key: string, make: () => T): T {
    let client = this.cache.get(key) as T | undefined;
    if (!client) {
      client = make();
      this.cache.set(key, client);
    }
    return client;
  }

  get cloudFormation(): CloudFormationClient {
    return this.get("cfn", () => new CloudFormationClient(this.config));
  }
  get stepFunctions(): SFNClient {
    return this.get("sfn", () => new SFNClient(this.config));
  }
  get athena(): AthenaClient {
    return this.get("athena", () => new AthenaClient(this.config));
  }
  get emrServerless(): EMRServerlessClient {
    return this.get("emr", () => new EMRServerlessClient(this.config));
  }
  get cloudWatch(): CloudWatchClient {
    return this.get("cw", () => new CloudWatchClient(this.config));
  }
  get sqs(): SQSClient {
    return this.get("sqs", () => new SQSClient(this.config));
  }
  get s3(): S3Client {
    // Path-style only against an emulator, whose host is not a bucket-addressable domain.
    return this.get("s3", () => new S3Client({ ...this.config, forcePathStyle: Boolean(this.config.endpoint) }));
  }

  /** Closes every socket the clients hold, so a CLI process exits promptly. */
  destroy(): void {
    for (const client of this.cache.values()) (client as { destroy(): void }).destroy();
    this.cache.clear();
  }
}
