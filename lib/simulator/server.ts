// The simulator's HTTP server (node:http, keep-alive): routing, bearer checks, the rate limit,
// fault injection and latency in front of the pure search/bulk/auth modules.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { pipeline } from "node:stream";
import * as zlib from "node:zlib";
import { AuthServer, type RegisteredClient } from "./auth";
import { bulkManifest, runBulkJob, type BulkFile, type BulkJob, type BulkLevel } from "./bulk";
import { pickRequestFault, type FaultSpec } from "./faults";
import { resourceKey } from "./ids";
import { operationOutcome } from "./outcome";
import { isResourceType, Population, RESOURCE_TYPES, type ResourceType } from "./population";
import { hashInts, hashUnit } from "./prng";
import { RateLimiter } from "./rate-limit";
import { outcomeReply, readGroup, readResource, search, type FhirReply, type Profile, type SearchContext } from "./search";
import { StatsRecorder, type SimulatorStats } from "./stats";

export const FHIR_BASE_PATH = "/api/FHIR/R4";
export const TOKEN_PATH = "/oauth2/token";
/** Epic's Retry-After while a bulk job runs (seconds, before the time factor). */
const BULK_RETRY_AFTER_S = 120;

export interface ServerSettings {
  pop: Population;
  profile: Profile;
  faults: FaultSpec;
  rateLimit?: number;
  latencyMs: number;
  timeFactor: number;
  resourcesPerFile: number;
  jobsDir: string;
  auth: AuthServer;
  client: RegisteredClient;
  seed: number;
}

/** Retry-After value in seconds; fractional when the time factor scales it below a second. */
export function formatRetryAfter(seconds: number): string {
  if (seconds >= 1 && Number.isInteger(seconds)) return String(seconds);
  const s = Math.max(0.001, Math.ceil(seconds * 1000) / 1000);
  return s >= 10 ? String(Math.ceil(s)) : String(Number(s.toFixed(3)));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class SimulatorServer {
  readonly stats = new StatsRecorder();
  private server: http.Server | undefined;
  private readonly limiter: RateLimiter;
  private readonly jobs = new Map<string, BulkJob>();
  private readonly exportsToday = new Set<string>();
  private requestSeq = 0;
  private downloadSeq = 0;
  private jobSeq = 0;
  /** Responses that will count served resources once written (see settledStats). */
  private readonly inflight = new Set<Promise<void>>();
  port = 0;
  baseUrl = "";
  tokenUrl = "";

  constructor(private readonly s: ServerSettings) {
    this.limiter = new RateLimiter(s.rateLimit);
  }

  /** Listens on 127.0.0.1:port (0 = ephemeral). */
  async listen(port: number): Promise<void> {
    const server = http.createServer({ keepAlive: true, keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        // Never echo bodies or parameters: they may hold PHI.
        process.stderr.write(`simulator: internal error on ${req.method} ${(req.url ?? "").split("?")[0]}: ${(err as Error).message}\n`);
        if (!res.headersSent) this.sendJson(res, 500, operationOutcome({ severity: "fatal", code: "exception", text: "Internal error" }));
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const job of this.jobs.values()) job.status = "deleted";
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /**
   * The stats once every response already under way has been written out (or aborted), so that
   * a client that has just read a whole response sees it counted. Waits at most `maxWaitMs`.
   */
  async settledStats(maxWaitMs = 5000): Promise<SimulatorStats> {
    if (this.inflight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...this.inflight]),
        new Promise<void>((r) => {
          timer = setTimeout(r, maxWaitMs);
        }),
      ]);
      clearTimeout(timer);
    }
    return this.stats.snapshot(this.s.pop.day);
  }

  /** Registers a response whose delivery affects the stats. */
  private track(res: http.ServerResponse): void {
    const p = new Promise<void>((resolve) => {
      res.once("finish", () => resolve());
      res.once("close", () => resolve());
    });
    this.inflight.add(p);
    void p.then(() => this.inflight.delete(p));
  }

  private get ctx(): SearchContext {
    return { pop: this.s.pop, profile: this.s.profile, baseUrl: this.baseUrl, defaultCount: 100, maxCount: 1000 };
  }

  // ------------------------------------------------------------------ dispatch

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const p = url.pathname;
    if (p === TOKEN_PATH) return this.handleToken(req, res);
    if (p.startsWith("/_admin/")) return this.handleAdmin(req, res, p);
    if (p === FHIR_BASE_PATH + "/metadata") return this.sendJson(res, 200, this.capabilityStatement(), "application/fhir+json");
    if (p === FHIR_BASE_PATH + "/.well-known/smart-configuration") {
      return this.sendJson(res, 200, {
        token_endpoint: this.tokenUrl,
        token_endpoint_auth_methods_supported: ["private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported: ["RS384", "RS256", "RS512"],
        grant_types_supported: ["client_credentials"],
        scopes_supported: ["system/*.read"],
        capabilities: ["client-confidential-asymmetric"],
      });
    }
    if (p !== FHIR_BASE_PATH && !p.startsWith(FHIR_BASE_PATH + "/")) {
      return this.sendJson(res, 404, operationOutcome({ severity: "error", code: "not-found", text: "Unknown path" }));
    }
    await this.handleFhir(req, res, url, p.slice(FHIR_BASE_PATH.length + 1));
  }

  private async handleFhir(req: http.IncomingMessage, res: http.ServerResponse, url: URL, rel: string): Promise<void> {
    this.stats.requests += 1;
    const seq = this.requestSeq++;
    const f = this.s.faults;
    let delay = this.s.latencyMs;
    if (f.slowMs > 0 && (f.slowProbability >= 1 || hashUnit(this.s.seed, seq, 0x51) < f.slowProbability)) {
      delay += f.slowMs;
      this.stats.fault("slow");
    }
    if (delay > 0) await sleep(delay);

    const clientId = this.s.auth.checkBearer(req.headers.authorization);
    if (!clientId) {
      this.stats.unauthorized += 1;
      res.setHeader("WWW-Authenticate", 'Bearer error="invalid_token"');
      return this.sendJson(res, 401, operationOutcome({ severity: "error", code: "login", text: "A valid bearer token is required." }));
    }
    const wait = this.limiter.check(clientId);
    if (wait > 0) {
      this.stats.throttled += 1;
      res.setHeader("Retry-After", formatRetryAfter(wait));
      return this.sendJson(res, 429, operationOutcome({ severity: "error", code: "throttled", text: "Too many requests." }));
    }
    const fault = pickRequestFault(f, hashUnit(this.s.seed, seq, 0xfa));
    if (fault) {
      this.stats.fault(fault);
      if (fault === "reset") {
        req.socket.destroy();
        return;
      }
      if (fault === "429" || (fault === "503" && seq % 2 === 0)) res.setHeader("Retry-After", formatRetryAfter(10 * this.s.timeFactor));
      const status = Number(fault);
      return this.sendJson(
        res,
        status,
        operationOutcome({ severity: "error", code: status === 429 ? "throttled" : "transient", text: `Simulated ${status}` }),
      );
    }

    const parts = rel.split("/").map((x) => decodeURIComponent(x));
    const method = req.method ?? "GET";
    // Bulk Data
    if (parts[0] === "BulkRequest" && parts.length >= 2) {
      const job = this.jobs.get(parts[1]);
      if (!job || job.status === "deleted" || job.clientId !== clientId) {
        return this.sendFhir(res, outcomeReply(404, "not-found", "The bulk request was not found.", "4102"));
      }
      if (parts.length === 2 && method === "GET") return this.bulkStatus(res, job);
      if (parts.length === 2 && method === "DELETE") return this.bulkDelete(res, job);
      if (parts.length === 3 && method === "GET") return this.bulkDownload(req, res, job, parts[2]);
      return this.sendFhir(res, outcomeReply(405, "not-supported", "Method not allowed."));
    }
    if (method !== "GET") return this.sendFhir(res, outcomeReply(405, "not-supported", "Only GET is supported here."));
    if (parts.length === 3 && parts[0] === "Group" && parts[2] === "$export")
      return this.kickOff(req, res, url, clientId, "group", parts[1]);
    if (parts.length === 2 && parts[0] === "Patient" && parts[1] === "$export") return this.kickOff(req, res, url, clientId, "patient");
    if (parts.length === 1 && parts[0] === "$export") return this.kickOff(req, res, url, clientId, "system");
    if (parts.length === 2 && parts[0] === "Group") return this.sendFhir(res, readGroup(this.ctx, parts[1]));
    if (parts.length === 2) return this.sendFhir(res, readResource(this.ctx, parts[0], parts[1]));
    if (parts.length === 1 && parts[0] !== "") return this.sendFhir(res, search(this.ctx, parts[0], url.searchParams));
    return this.sendFhir(res, outcomeReply(404, "not-found", "Unknown FHIR path."));
  }

  // ------------------------------------------------------------------ token endpoint

  private async handleToken(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== "POST") return this.sendJson(res, 405, { error: "invalid_request", error_description: "POST required" });
    this.stats.tokenRequests += 1;
    const body = await readBody(req, 64 * 1024);
    if (body === undefined) return this.sendJson(res, 400, { error: "invalid_request", error_description: "request body too large" });
    const reply = await this.s.auth.token(req.headers["content-type"], new URLSearchParams(body.toString("utf8")));
    if (reply.status === 200) this.stats.tokensIssued += 1;
    if (reply.body === undefined) {
      this.stats.fault("token-400");
      res.writeHead(reply.status, { "Content-Length": 0 });
      res.end();
      return;
    }
    res.setHeader("Cache-Control", "no-store");
    res.setHeader("Pragma", "no-cache");
    this.sendJson(res, reply.status, reply.body);
  }

  // ------------------------------------------------------------------ admin

  private async handleAdmin(req: http.IncomingMessage, res: http.ServerResponse, p: string): Promise<void> {
    const method = req.method ?? "GET";
    if (p === "/_admin/jwks.json" && method === "GET") return this.sendJson(res, 200, this.s.auth.jwks());
    if (p === "/_admin/stats" && method === "GET") return this.sendJson(res, 200, await this.settledStats());
    if (p === "/_admin/reset-stats" && method === "POST") {
      await this.settledStats();
      this.stats.reset();
      return this.sendJson(res, 200, { reset: true });
    }
    if (p === "/_admin/advance" && method === "POST") {
      const body = await readBody(req, 4096);
      let days = 1;
      if (body && body.length > 0) {
        try {
          const parsed = JSON.parse(body.toString("utf8")) as { days?: unknown };
          if (parsed.days !== undefined) days = Number(parsed.days);
        } catch {
          return this.sendJson(res, 400, { error: 'body must be JSON like {"days": 1}' });
        }
      }
      try {
        return this.sendJson(res, 200, this.advance(days));
      } catch (e) {
        return this.sendJson(res, 400, { error: (e as Error).message });
      }
    }
    this.sendJson(res, 404, { error: "unknown admin path" });
  }

  advance(days = 1): { day: number; now: string } {
    const day = this.s.pop.advance(days);
    return { day, now: new Date(this.s.pop.now()).toISOString() };
  }

  // ------------------------------------------------------------------ bulk

  private kickOff(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    clientId: string,
    level: BulkLevel,
    groupId?: string,
  ): void {
    const profile = this.s.profile;
    const pop = this.s.pop;
    const bad = (status: number, code: string, text: string): void => this.sendFhir(res, outcomeReply(status, code, text));
    if (profile === "epic" && level !== "group") return bad(400, "not-supported", "Only Group-level bulk export is supported.");
    const prefer = String(req.headers.prefer ?? "");
    if (!/respond-async/i.test(prefer)) return bad(400, "required", "The Prefer: respond-async header is required.");
    const accept = req.headers.accept;
    if (accept && !/application\/(fhir\+)?json|\*\/\*/i.test(accept))
      return bad(400, "not-supported", "Accept must be application/fhir+json.");
    const format = url.searchParams.get("_outputFormat");
    if (format && !["application/fhir+ndjson", "application/ndjson", "ndjson"].includes(format)) {
      return bad(400, "not-supported", `_outputFormat ${format} is not supported.`);
    }
    let types: ResourceType[] = [...RESOURCE_TYPES];
    const typeParam = url.searchParams.getAll("_type").join(",");
    if (typeParam.trim() !== "") {
      types = [];
      for (const t of typeParam
        .split(",")
        .map((x) => x.trim())
        .filter((x) => x)) {
        if (!isResourceType(t)) return bad(400, "not-supported", `_type ${t} is not supported.`);
        if (!types.includes(t)) types.push(t);
      }
    }
    let since: number | undefined;
    const sinceText = url.searchParams.get("_since");
    if (sinceText !== null) {
      if (profile === "epic") return bad(400, "not-supported", "The _since parameter is not supported.");
      const t = Date.parse(sinceText);
      if (!/^\d{4}-\d{2}-\d{2}T/.test(sinceText) || Number.isNaN(t)) return bad(400, "invalid", "_since must be a FHIR instant.");
      since = t;
    }
    let patients: number[];
    if (level === "group") {
      const g = pop.group(groupId ?? "");
      if (!g) return this.sendFhir(res, outcomeReply(404, "not-found", `Group/${groupId} was not found.`, "4102"));
      patients = [];
      for (let i = g.start; i < g.end; i++) patients.push(i);
    } else {
      patients = Array.from({ length: pop.size }, (_, i) => i);
    }
    if (profile === "epic") {
      const key = `${clientId}\u0000${groupId}\u0000${pop.day}`;
      if (this.exportsToday.has(key)) return bad(400, "throttled", "The Client requested this Group too recently.");
      this.exportsToday.add(key);
    }
    const seq = this.jobSeq++;
    const id = `${seq + 1}-${hashInts(this.s.seed, seq, 0x10b).toString(16).padStart(8, "0")}${crypto.randomBytes(4).toString("hex")}`;
    const now = Date.now();
    const job: BulkJob = {
      id,
      seq,
      clientId,
      level,
      groupId,
      types,
      since,
      request: `${this.baseUrl}/${url.pathname.slice(FHIR_BASE_PATH.length + 1)}${url.search}`,
      transactionTime: pop.now(),
      day: pop.day,
      createdAt: now,
      readyNotBefore: now + BULK_RETRY_AFTER_S * 1000 * this.s.timeFactor,
      status: "in-progress",
      polls: 0,
      patientsDone: 0,
      patientsTotal: patients.length,
      files: [],
      dir: path.join(this.s.jobsDir, id),
      reportError: this.s.faults.bulkError > 0 && hashUnit(this.s.seed, seq, 0xbe) < this.s.faults.bulkError,
    };
    if (job.reportError) this.stats.fault("bulk-error");
    this.jobs.set(id, job);
    this.stats.bulkJobs += 1;
    runBulkJob(job, pop, patients, {
      resourcesPerFile: this.s.resourcesPerFile,
      withLastUpdated: profile === "spec",
      reportDeleted: profile === "spec",
      malformed: this.s.faults.malformed,
      bulkError: this.s.faults.bulkError,
      seed: this.s.seed,
    }).then(
      () => {
        if (job.status === "in-progress") job.status = "complete";
      },
      (err: unknown) => {
        job.status = "failed";
        job.failure = (err as Error).message;
      },
    );
    res.writeHead(202, { "Content-Location": `${this.baseUrl}/BulkRequest/${id}`, "Content-Length": 0 });
    res.end();
  }

  private bulkStatus(res: http.ServerResponse, job: BulkJob): void {
    if (job.status === "failed") return this.sendFhir(res, outcomeReply(500, "exception", "The bulk request failed."));
    const firstPoll = job.polls++ === 0;
    if (job.status === "in-progress" || firstPoll || Date.now() < job.readyNotBefore) {
      const pct = job.patientsTotal === 0 ? 100 : Math.floor((job.patientsDone / job.patientsTotal) * 100);
      res.writeHead(202, {
        "X-Progress": `${Math.min(pct, 99)}% complete`,
        "Retry-After": formatRetryAfter(BULK_RETRY_AFTER_S * this.s.timeFactor),
        "Content-Length": 0,
      });
      res.end();
      return;
    }
    const manifest = bulkManifest(job, (j, f) => `${this.baseUrl}/BulkRequest/${j.id}/${f.name}`, this.s.profile);
    this.sendJson(res, 200, manifest);
  }

  private bulkDelete(res: http.ServerResponse, job: BulkJob): void {
    job.status = "deleted";
    this.jobs.delete(job.id);
    fs.rm(job.dir, { recursive: true, force: true }, () => undefined);
    res.writeHead(202, { "Content-Length": 0 });
    res.end();
  }

  private bulkDownload(req: http.IncomingMessage, res: http.ServerResponse, job: BulkJob, name: string): void {
    const file = job.status === "complete" ? job.files.find((x) => x.name === name) : undefined;
    if (!file) return this.sendFhir(res, outcomeReply(404, "not-found", "The file was not found.", "4102"));
    const gzip = /\bgzip\b/i.test(String(req.headers["accept-encoding"] ?? ""));
    const dl = this.downloadSeq++;
    const truncate = this.s.faults.truncate > 0 && hashUnit(this.s.seed, dl, 0x7c) < this.s.faults.truncate;
    const headers: Record<string, string | number> = { "Content-Type": "application/fhir+ndjson" };
    if (gzip) headers["Content-Encoding"] = "gzip";
    else headers["Content-Length"] = file.size;

    if (truncate) {
      this.stats.fault("truncate");
      const cut = Math.floor(hashUnit(this.s.seed, dl, 0x7d) * file.count);
      const lineStart = cut === 0 ? 0 : file.lineEnds[cut - 1];
      const cutByte = lineStart + Math.floor((file.lineEnds[cut] - lineStart) / 2);
      const fd = fs.openSync(file.path, "r");
      const buf = Buffer.alloc(cutByte);
      fs.readSync(fd, buf, 0, cutByte, 0);
      fs.closeSync(fd);
      // A gzip stream flushed but not finished: the client can decode up to the cut, then the
      // connection closes before the body ends.
      const payload = gzip ? zlib.gzipSync(buf, { level: 1, finishFlush: zlib.constants.Z_SYNC_FLUSH }) : buf;
      res.writeHead(200, headers);
      this.track(res);
      res.write(payload, (err) => {
        if (!err) this.countLines(file, cut);
        res.socket?.destroySoon();
      });
      return;
    }

    res.writeHead(200, headers);
    const src = fs.createReadStream(file.path, { highWaterMark: 256 * 1024 });
    // Count on 'finish' (every byte handed to the connection), not on the pipeline's callback,
    // which also waits for the file descriptor to close: a client could ask for the stats first.
    res.on("finish", () => this.countLines(file, file.count));
    this.track(res);
    const ignore = (): void => undefined; // an aborted download simply counts nothing
    if (gzip) pipeline(src, zlib.createGzip({ level: 1 }), res, ignore);
    else pipeline(src, res, ignore);
  }

  /** Counts the first n lines of a file as delivered (see stats.ts for the exact semantics). */
  private countLines(file: BulkFile, n: number): void {
    if (file.kind === "output") {
      for (let i = 0; i < n; i++) this.stats.markServed(file.type, file.keys[i]);
    } else if (file.kind === "deleted" && file.deletedEntries) {
      for (let i = 0; i < n; i++) for (const d of file.deletedEntries[i]) this.stats.markDeleted(d.type, d.key);
    }
  }

  // ------------------------------------------------------------------ responses

  private sendFhir(res: http.ServerResponse, reply: FhirReply): void {
    const body = Buffer.from(reply.body);
    res.writeHead(reply.status, { "Content-Type": "application/fhir+json; charset=utf-8", "Content-Length": body.length });
    if (reply.entries.length > 0) this.track(res);
    res.end(body, () => {
      if (reply.status === 200) for (const r of reply.entries) this.stats.markServed(r.type, resourceKey(r.owner, r.slot, r.version));
    });
  }

  private sendJson(res: http.ServerResponse, status: number, body: unknown, contentType = "application/json"): void {
    const text = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { "Content-Type": `${contentType}; charset=utf-8`, "Content-Length": text.length });
    res.end(text);
  }

  private capabilityStatement(): Record<string, unknown> {
    return {
      resourceType: "CapabilityStatement",
      status: "active",
      date: new Date(this.s.pop.now()).toISOString(),
      kind: "instance",
      software: { name: "fhir-pipeline simulator", version: "1" },
      fhirVersion: "4.0.1",
      format: ["application/fhir+json"],
      rest: [
        {
          mode: "server",
          security: {
            extension: [
              {
                url: "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                extension: [{ url: "token", valueUri: this.tokenUrl }],
              },
            ],
          },
          resource: RESOURCE_TYPES.map((type) => ({ type, interaction: [{ code: "read" }, { code: "search-type" }] })),
          operation: [{ name: "export", definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export" }],
        },
      ],
    };
  }
}

/** Reads a request body up to `limit` bytes (undefined when larger). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) tooBig = true;
      else chunks.push(c);
    });
    req.on("end", () => resolve(tooBig ? undefined : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
