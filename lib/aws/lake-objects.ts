// Reading and writing the lake's objects from the CLI (run manifests, metrics Parquet files),
// through the lake's one storage module (lib/core/storage.ts), bound to the CLI's S3 client so the
// region, credentials and (in tests) the emulator endpoint are the command's own.
import type { ObjectWriter } from "../core/metrics";
import { S3Storage } from "../core/storage";
import type { AwsClients } from "./clients";

export interface LakeObjects {
  /** Object URIs under a prefix URI, sorted. */
  list(prefixUri: string): Promise<string[]>;
  read(uri: string): Promise<Uint8Array>;
  write: ObjectWriter;
}

export function s3LakeObjects(clients: AwsClients): LakeObjects {
  const storage = new S3Storage(clients.s3);
  return {
    list: async (prefixUri) => (await storage.list(prefixUri)).map((o) => o.uri),
    read: (uri) => storage.read(uri),
    write: (uri, bytes) => storage.write(uri, bytes),
  };
}
