// Reading and writing the lake's objects from the CLI (run manifests, metrics Parquet files).
// The lake's storage module (lib/core/storage.ts, file:// and s3://) is the one place that knows
// how; this adapter binds it to the CLI's S3 client so tests reach the emulator.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import type { ObjectWriter } from "../core/metrics";
import type { AwsClients } from "./clients";

export interface LakeObjects {
  /** Keys (full s3:// URIs) under a prefix URI, in key order. */
  list(prefixUri: string): Promise<string[]>;
  read(uri: string): Promise<Uint8Array>;
  write: ObjectWriter;
}

function parseS3(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: m[1], key: m[2] };
}

export function s3LakeObjects(clients: AwsClients): LakeObjects {
  return {
    async list(prefixUri) {
      const { bucket, key } = parseS3(prefixUri);
      const prefix = key && !key.endsWith("/") ? `${key}/` : key;
      const out: string[] = [];
      let token: string | undefined;
      do {
        const page = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) if (o.Key) out.push(`s3://${bucket}/${o.Key}`);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return out.sort();
    },
    async read(uri) {
      const { bucket, key } = parseS3(uri);
      const answer = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return answer.Body!.transformToByteArray();
    },
    async write(uri, bytes) {
      const { bucket, key } = parseS3(uri);
      await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    },
  };
}
