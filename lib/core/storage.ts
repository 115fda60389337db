// One storage interface for the lake, whatever the URI: `file://…` (a directory on this machine)
// or `s3://bucket/key` (S3, via @aws-sdk/client-s3). The bronze writer, the run manifests and the
// local run all go through it, so one code path serves the laptop and the cloud.
//
// Writes are atomic: a reader never sees half a file under its final name. Locally the bytes go to
// a hidden temporary file in the same directory (`.NAME.tmp-…`, which Spark and our listings
// ignore), then are renamed. On S3 an object only appears when PutObject or the last step of a
// multipart upload succeeds; a failed multipart upload is aborted.
// Durability against a machine crash (not just a process crash) is asked for where it matters:
// `sync(uris)` fsyncs files written before (the bronze writer's parts, all at once before the run
// manifest is committed), and `write(…, { durable: true })` fsyncs before the rename (the
// manifest). S3 writes are durable when they return.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";

export interface ObjectInfo {
  /** Full URI of the object (same scheme as the listing prefix). */
  uri: string;
  size: number;
}

export interface Storage {
  /** The whole object. Throws NotFoundError when absent. */
  read(uri: string): Promise<Buffer>;
  /** The object as UTF-8 text, or undefined when it does not exist. */
  readTextIfExists(uri: string): Promise<string | undefined>;
  /** A stream of the object's bytes. */
  readStream(uri: string): Promise<Readable>;
  /** Writes the whole object atomically (replaces any previous one); `durable`: fsync'd before it appears. */
  write(uri: string, data: Uint8Array | string, options?: WriteOptions): Promise<void>;
  /** Writes a stream atomically; returns the number of bytes written. */
  writeStream(uri: string, source: AsyncIterable<Uint8Array>): Promise<number>;
  /** Every object under a prefix (recursively), sorted by URI; temporary files are skipped. */
  list(prefixUri: string): Promise<ObjectInfo[]>;
  exists(uri: string): Promise<boolean>;
  /** Deletes an object; no error when it is already gone. */
  delete(uri: string): Promise<void>;
  /** Makes objects written earlier durable (local files: fsync; S3: nothing to do). */
  sync(uris: readonly string[]): Promise<void>;
  /**
   * Removes the temporary files that writers killed mid-write left under a prefix (local files:
   * those of processes no longer alive); returns how many. S3 has none to remove: an unfinished
   * multipart upload is aborted by the bucket's lifecycle rule.
   */
  removeAbandonedTemporaries(prefixUri: string): Promise<number>;
}

export interface WriteOptions {
  /** fsync before the object appears under its name (S3: always). */
  durable?: boolean;
}

export class NotFoundError extends Error {
  constructor(readonly uri: string) {
    super(`not found: ${uri}`);
    this.name = "NotFoundError";
  }
}

/** Joins URI segments with single slashes: joinUri("s3://b/bronze/", "_runs", "r1") -> s3://b/bronze/_runs/r1. */
export function joinUri(base: string, ...parts: string[]): string {
  let out = base.replace(/\/+$/, "");
  for (const p of parts) {
    const seg = p.replace(/^\/+|\/+$/g, "");
    if (seg) out += "/" + seg;
  }
  return out;
}

/** The local path of a file:// URI (or of a plain path); relative paths resolve against the cwd. */
export function fileUriToPath(uri: string): string {
  if (uri.startsWith("file://")) {
    const rest = uri.slice("file://".length);
    // file:///abs, file://./rel and file://rel are all accepted (the CLI's --out file://DIR).
    return path.resolve(decodeURIComponent(rest.startsWith("localhost/") ? rest.slice("localhost".length) : rest));
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) throw new Error(`not a file URI: ${uri}`);
  return path.resolve(uri);
}

/** The canonical file:// URI of a local path. */
export function pathToFileUri(p: string): string {
  return "file://" + path.resolve(p);
}

/** Normalises what a user typed (a path, file://…, s3://…) into a file:// or s3:// URI. */
export function normalizeUri(uriOrPath: string): string {
  if (uriOrPath.startsWith("s3://")) return uriOrPath.replace(/\/+$/, "");
  return pathToFileUri(fileUriToPath(uriOrPath));
}

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: m[1], key: m[2] };
}

function isTempName(name: string): boolean {
  return name.startsWith(".") && name.includes(".tmp-");
}

/** The writer's pid in a temporary name (`.NAME.tmp-PID-HEX`), or undefined. */
export function tempWriterPid(name: string): number | undefined {
  const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
  return isTempName(name) && m ? Number(m[1]) : undefined;
}

/** Every regular file below a directory (depth first); nothing when it does not exist. */
async function* filesUnder(dir: string): AsyncGenerator<{ file: string; name: string }> {
  let entries: fs.Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return;
    throw e;
  }
  for (const ent of entries) {
    const file = path.join(dir, ent.name);
    if (ent.isDirectory()) yield* filesUnder(file);
    else if (ent.isFile()) yield { file, name: ent.name };
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // alive, someone else's
  }
}

// ---------------------------------------------------------------------------------------------

export class FileStorage implements Storage {
  async read(uri: string): Promise<Buffer> {
    try {
      return await fsp.readFile(fileUriToPath(uri));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(uri);
      throw e;
    }
  }

  async readTextIfExists(uri: string): Promise<string | undefined> {
    try {
      return await fsp.readFile(fileUriToPath(uri), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async readStream(uri: string): Promise<Readable> {
    const p = fileUriToPath(uri);
    if (!fs.existsSync(p)) throw new NotFoundError(uri);
    return fs.createReadStream(p, { highWaterMark: 256 << 10 });
  }

  async write(uri: string, data: Uint8Array | string, options: WriteOptions = {}): Promise<void> {
    await this.atomically(
      uri,
      async (fh) => {
        await fh.writeFile(data);
        return typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
      },
      options.durable === true,
    );
  }

  async writeStream(uri: string, source: AsyncIterable<Uint8Array>): Promise<number> {
    return this.atomically(uri, async (fh) => {
      let n = 0;
      for await (const chunk of source) {
        await fh.write(chunk);
        n += chunk.byteLength;
      }
      return n;
    });
  }

  private async atomically(uri: string, body: (fh: fsp.FileHandle) => Promise<number>, durable = false): Promise<number> {
    const target = fileUriToPath(uri);
    const dir = path.dirname(target);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
    const fh = await fsp.open(tmp, "w");
    let n: number;
    try {
      n = await body(fh);
      if (durable) await fh.sync();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    try {
      await fsp.rename(tmp, target);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    return n;
  }

  async list(prefixUri: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    for await (const { file, name } of filesUnder(fileUriToPath(prefixUri)))
      if (!isTempName(name)) out.push({ uri: pathToFileUri(file), size: (await fsp.stat(file)).size });
    out.sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
    return out;
  }

  async removeAbandonedTemporaries(prefixUri: string): Promise<number> {
    let removed = 0;
    for await (const { file, name } of filesUnder(fileUriToPath(prefixUri))) {
      const pid = tempWriterPid(name);
      // A live writer (this process or another) may still rename its file: left alone.
      if (pid === undefined || pid === process.pid || processAlive(pid)) continue;
      await fsp.rm(file, { force: true });
      removed++;
    }
    return removed;
  }

  async exists(uri: string): Promise<boolean> {
    try {
      await fsp.access(fileUriToPath(uri));
      return true;
    } catch {
      return false;
    }
  }

  async delete(uri: string): Promise<void> {
    await fsp.rm(fileUriToPath(uri), { force: true });
  }

  async sync(uris: readonly string[]): Promise<void> {
    const dirs = new Set<string>();
    // A few at a time: the kernel has most of it written back by now.
    for (let i = 0; i < uris.length; i += 16) {
      await Promise.all(
        uris.slice(i, i + 16).map(async (u) => {
          const p = fileUriToPath(u);
          dirs.add(path.dirname(p));
          const fh = await fsp.open(p, "r");
          try {
            await fh.sync();
          } finally {
            await fh.close();
          }
        }),
      );
    }
    // and the directory entries the renames created
    for (const d of dirs) {
      const fh = await fsp.open(d, "r").catch(() => undefined);
      if (fh)
        await fh
          .sync()
          .catch(() => undefined)
          .finally(() => fh.close());
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** S3 multipart parts must be at least 5 MiB (except the last). */
const S3_PART_BYTES = 8 << 20;

export class S3Storage implements Storage {
  private clientPromise: Promise<S3Client> | undefined;

  constructor(client?: S3Client) {
    if (client) this.clientPromise = Promise.resolve(client);
  }

  private async client(): Promise<S3Client> {
    // Loaded lazily: local runs never pay for the AWS SDK.
    this.clientPromise ??= import("@aws-sdk/client-s3").then((m) => new m.S3Client(awsClientConfig(true)));
    return this.clientPromise;
  }

  async read(uri: string): Promise<Buffer> {
    const stream = await this.readStream(uri);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async readTextIfExists(uri: string): Promise<string | undefined> {
    try {
      return (await this.read(uri)).toString("utf8");
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  async readStream(uri: string): Promise<Readable> {
    const { GetObjectCommand } = await import("@aws-sdk/client-s3");
    const { bucket, key } = parseS3Uri(uri);
    try {
      const res = await (await this.client()).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return res.Body as Readable;
    } catch (e) {
      if (isS3NotFound(e)) throw new NotFoundError(uri);
      throw e;
    }
  }

  async write(uri: string, data: Uint8Array | string): Promise<void> {
    // S3 objects are durable once PutObject returns.
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    const { bucket, key } = parseS3Uri(uri);
    await (await this.client()).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data }));
  }

  async writeStream(uri: string, source: AsyncIterable<Uint8Array>): Promise<number> {
    const s3 = await import("@aws-sdk/client-s3");
    const client = await this.client();
    const { bucket, key } = parseS3Uri(uri);
    let uploadId: string | undefined;
    const parts: { ETag?: string; PartNumber: number }[] = [];
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let total = 0;
    const flushPart = async (): Promise<void> => {
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      if (!uploadId) {
        const created = await client.send(new s3.CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
        uploadId = created.UploadId;
      }
      const PartNumber = parts.length + 1;
      const res = await client.send(new s3.UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber, Body: body }));
      parts.push({ ETag: res.ETag, PartNumber });
    };
    try {
      for await (const chunk of source) {
        pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        pendingBytes += chunk.byteLength;
        total += chunk.byteLength;
        if (pendingBytes >= S3_PART_BYTES) await flushPart();
      }
      if (!uploadId) {
        // Small object: one PutObject, atomic by itself.
        await client.send(new s3.PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.concat(pending, pendingBytes) }));
        return total;
      }
      if (pendingBytes > 0) await flushPart();
      await client.send(
        new s3.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
      return total;
    } catch (e) {
      if (uploadId) {
        await client.send(new s3.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      }
      throw e;
    }
  }

  async list(prefixUri: string): Promise<ObjectInfo[]> {
    const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
    const client = await this.client();
    const { bucket, key } = parseS3Uri(prefixUri);
    const prefix = key === "" || key.endsWith("/") ? key : key + "/";
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of res.Contents ?? []) {
        if (!o.Key || isTempName(path.posix.basename(o.Key))) continue;
        out.push({ uri: `s3://${bucket}/${o.Key}`, size: o.Size ?? 0 });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    out.sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
    return out;
  }

  async exists(uri: string): Promise<boolean> {
    const { HeadObjectCommand } = await import("@aws-sdk/client-s3");
    const { bucket, key } = parseS3Uri(uri);
    try {
      await (await this.client()).send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (e) {
      if (isS3NotFound(e)) return false;
      throw e;
    }
  }

  async delete(uri: string): Promise<void> {
    const { DeleteObjectCommand } = await import("@aws-sdk/client-s3");
    const { bucket, key } = parseS3Uri(uri);
    await (await this.client()).send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }

  async sync(): Promise<void> {
    // nothing to do: S3 writes are durable when they return
  }

  async removeAbandonedTemporaries(): Promise<number> {
    return 0; // unfinished multipart uploads: the bucket's lifecycle rule aborts them
  }
}

/**
 * Test-only endpoint override of every AWS client (the moto server the tests start on 127.0.0.1),
 * the same variable as lib/aws/clients.ts reads. Never set in the cloud.
 */
export const AWS_ENDPOINT_ENV = "FHIR_PIPELINE_AWS_ENDPOINT";

/** SDK client config: the endpoint override when set (path-style S3 then: an emulator has no bucket domains). */
export function awsClientConfig(s3 = false): { endpoint?: string; forcePathStyle?: boolean } {
  const endpoint = process.env[AWS_ENDPOINT_ENV];
  if (!endpoint) return {};
  return s3 ? { endpoint, forcePathStyle: true } : { endpoint };
}

function isS3NotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === "NoSuchKey" || err?.name === "NotFound" || err?.$metadata?.httpStatusCode === 404;
}

// ---------------------------------------------------------------------------------------------

const fileStorage = new FileStorage();
let s3Storage: S3Storage | undefined;

/** The storage that serves a URI's scheme (file:// or a plain path: local; s3://: S3). */
export function storageFor(uri: string): Storage {
  if (uri.startsWith("s3://")) return (s3Storage ??= new S3Storage());
  return fileStorage;
}

/** Reads and parses a JSON object, or undefined when absent. */
export async function readJsonIfExists<T>(storage: Storage, uri: string): Promise<T | undefined> {
  const text = await storage.readTextIfExists(uri);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

/** Writes a JSON document atomically (pretty-printed: manifests are read by people too). */
export async function writeJson(storage: Storage, uri: string, value: unknown, options?: WriteOptions): Promise<void> {
  await storage.write(uri, JSON.stringify(value, null, 2) + "\n", options);
}
