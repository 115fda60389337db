// lib/core/storage.ts: one interface for file:// and s3:// (moto, the local S3 emulator): atomic
// writes (no temporary file ever listed, nothing left on failure), streams, multipart uploads,
// listing, existence, deletion.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import {
  AWS_ENDPOINT_ENV,
  FileStorage,
  fileUriToPath,
  joinUri,
  normalizeUri,
  NotFoundError,
  S3Storage,
  storageFor,
} from "../../lib/core/storage";
import { MOTO_ENV, startMoto, type MotoServer } from "../aws/moto-server";
import { tempDir } from "./bronze-reader";

async function* chunks(n: number, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < n; i++) yield Buffer.alloc(size, 65 + (i % 26));
}

describe("storage URIs", () => {
  it("joins and normalises", () => {
    expect(joinUri("s3://b/bronze/", "/_runs/", "r1")).toBe("s3://b/bronze/_runs/r1");
    expect(normalizeUri("s3://b/x/")).toBe("s3://b/x");
    expect(normalizeUri("/tmp/a")).toBe("file:///tmp/a");
    expect(fileUriToPath("file://./x")).toBe(path.resolve("x"));
    expect(storageFor("s3://b/k")).toBeInstanceOf(S3Storage);
    expect(storageFor("file:///tmp")).toBeInstanceOf(FileStorage);
  });
});

describe("FileStorage", () => {
  const s = new FileStorage();
  let dir: string;
  beforeAll(() => (dir = tempDir("storage-")));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes atomically, lists without temporary files, reads, deletes", async () => {
    const uri = `file://${dir}/a/b/c.json`;
    expect(await s.exists(uri)).toBe(false);
    expect(await s.readTextIfExists(uri)).toBeUndefined();
    await expect(s.read(uri)).rejects.toBeInstanceOf(NotFoundError);
    await s.write(uri, '{"x":1}', { durable: true });
    expect(await s.readTextIfExists(uri)).toBe('{"x":1}');
    fs.writeFileSync(path.join(dir, "a", "b", ".c.json.tmp-1-abc"), "half");
    expect((await s.list(`file://${dir}/a`)).map((o) => o.uri)).toEqual([uri]);
    const n = await s.writeStream(`file://${dir}/big.bin`, chunks(5, 1000));
    expect(n).toBe(5000);
    expect((await s.read(`file://${dir}/big.bin`)).length).toBe(5000);
    await s.sync([uri, `file://${dir}/big.bin`]);
    await s.delete(uri);
    await s.delete(uri);
    expect(await s.exists(uri)).toBe(false);
  });

  it("leaves nothing behind when a stream fails part-way", async () => {
    async function* failing(): AsyncIterable<Uint8Array> {
      yield Buffer.from("partial");
      throw new Error("source broke");
    }
    await expect(s.writeStream(`file://${dir}/f/out.bin`, failing())).rejects.toThrow("source broke");
    expect(fs.readdirSync(path.join(dir, "f"))).toEqual([]);
  });

  it("removes the temporary files of writers that died, and only those", async () => {
    // A real process that has exited: its pid names a writer that can never finish.
    const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    const deadPid = Number(child.stdout);
    const run = path.join(dir, "run", "part");
    fs.mkdirSync(run, { recursive: true });
    const names = {
      dead: `.part-00000.parquet.tmp-${deadPid}-0a1b2c3d`,
      mine: `.part-00001.parquet.tmp-${process.pid}-0a1b2c3d`,
      parent: `.part-00002.parquet.tmp-${process.ppid}-0a1b2c3d`,
      data: "part-00003.parquet",
    };
    for (const n of Object.values(names)) fs.writeFileSync(path.join(run, n), "");
    expect(await s.removeAbandonedTemporaries(`file://${path.join(dir, "run")}`)).toBe(1);
    expect(fs.readdirSync(run).sort()).toEqual([names.mine, names.parent, names.data].sort());
    expect(await s.removeAbandonedTemporaries(`file://${path.join(dir, "absent")}`)).toBe(0);
  });
});

describe("S3Storage (moto)", () => {
  let moto: MotoServer;
  const saved = { ...process.env };
  beforeAll(async () => {
    moto = await startMoto();
    Object.assign(process.env, MOTO_ENV, { [AWS_ENDPOINT_ENV]: moto.endpoint });
    await new S3Client({ endpoint: moto.endpoint, region: "us-east-1", forcePathStyle: true }).send(
      new CreateBucketCommand({ Bucket: "lake" }),
    );
  });
  afterAll(async () => {
    process.env = saved;
    await moto?.stop();
  });

  it("puts, streams (multipart above 8 MiB), lists, reads, deletes", async () => {
    const s = new S3Storage();
    await s.write("s3://lake/bronze/_runs/r1/manifest.json", "{}");
    expect(await s.readTextIfExists("s3://lake/bronze/_runs/r1/manifest.json")).toBe("{}");
    expect(await s.readTextIfExists("s3://lake/bronze/none.json")).toBeUndefined();
    const n = await s.writeStream("s3://lake/bronze/x/big.bin", chunks(10, 1 << 20));
    expect(n).toBe(10 << 20);
    expect((await s.read("s3://lake/bronze/x/big.bin")).length).toBe(10 << 20);
    const small = await s.writeStream("s3://lake/bronze/x/small.bin", chunks(2, 100));
    expect(small).toBe(200);
    expect((await s.list("s3://lake/bronze")).map((o) => [o.uri, o.size])).toEqual([
      ["s3://lake/bronze/_runs/r1/manifest.json", 2],
      ["s3://lake/bronze/x/big.bin", 10 << 20],
      ["s3://lake/bronze/x/small.bin", 200],
    ]);
    expect(await s.exists("s3://lake/bronze/x/small.bin")).toBe(true);
    await s.delete("s3://lake/bronze/x/small.bin");
    expect(await s.exists("s3://lake/bronze/x/small.bin")).toBe(false);
    await s.sync();
  });
});
