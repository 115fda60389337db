// Where the client's private key comes from: a PEM file on this machine (local runs) or a
// Secrets Manager secret (the cloud). The key is read when first needed, kept in memory only,
// and never logged or put in an error message.
import * as fsp from "node:fs/promises";
import { awsClientConfig } from "../../../lib/core/storage";

export interface KeySource {
  /** The PEM text of the private key (PKCS#8 "BEGIN PRIVATE KEY", or PKCS#1 RSA / SEC1 EC). */
  privateKeyPem(): Promise<string>;
  /** Where the key comes from, for messages (a path or a secret name; never the key). */
  readonly description: string;
}

export class FileKeySource implements KeySource {
  constructor(readonly file: string) {}
  get description(): string {
    return `key file ${this.file}`;
  }
  async privateKeyPem(): Promise<string> {
    try {
      return await fsp.readFile(this.file, "utf8");
    } catch (e) {
      const err = new Error(`cannot read the private key file ${this.file}: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
      err.name = "ConfigurationError";
      throw err;
    }
  }
}

/** Minimal view of the Secrets Manager client, so tests can pass their own. */
export interface SecretsReader {
  getSecretString(secretId: string): Promise<string | undefined>;
}

export class SecretsManagerKeySource implements KeySource {
  private cached: Promise<string> | undefined;
  constructor(
    readonly secretId: string,
    private readonly reader?: SecretsReader,
  ) {}
  get description(): string {
    return `secret ${this.secretId}`;
  }
  privateKeyPem(): Promise<string> {
    // One read per Lambda container: the key does not change during a run.
    this.cached ??= this.load().catch((e: unknown) => {
      this.cached = undefined;
      throw e;
    });
    return this.cached;
  }
  private async load(): Promise<string> {
    const reader = this.reader ?? (await defaultSecretsReader());
    let value: string | undefined;
    try {
      value = await reader.getSecretString(this.secretId);
    } catch (e) {
      const err = new Error(`cannot read the private key from Secrets Manager secret ${this.secretId}: ${(e as Error).name}`);
      err.name = "ConfigurationError";
      throw err;
    }
    if (!value || !value.includes("PRIVATE KEY")) {
      const err = new Error(`Secrets Manager secret ${this.secretId} does not hold a PEM private key`);
      err.name = "ConfigurationError";
      throw err;
    }
    return value;
  }
}

async function defaultSecretsReader(): Promise<SecretsReader> {
  const sm = await import("@aws-sdk/client-secrets-manager");
  const client = new sm.SecretsManagerClient(awsClientConfig());
  return {
    async getSecretString(secretId: string) {
      const res = await client.send(new sm.GetSecretValueCommand({ SecretId: secretId }));
      return res.SecretString ?? (res.SecretBinary ? Buffer.from(res.SecretBinary).toString("utf8") : undefined);
    },
  };
}
