// Starts moto (the AWS emulator, `moto[server]` in the spark-jobs virtualenv) as a real HTTP server
// on 127.0.0.1 for the CLI's AWS tests, and stops it. Each test file gets its own server and port.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const MOTO_SERVER = path.resolve(__dirname, "../../spark-jobs/.venv/bin/moto_server");

export interface MotoServer {
  endpoint: string;
  port: number;
  /** POST JSON to one of moto's own /moto-api endpoints (configuration, seeded results). */
  api(pathname: string, body: unknown): Promise<void>;
  stop(): Promise<void>;
}

/** The credentials and region every AWS test uses: moto accepts any; these are never real. */
export const MOTO_ENV = {
  AWS_ACCESS_KEY_ID: "testing",
  AWS_SECRET_ACCESS_KEY: "testing",
  AWS_SESSION_TOKEN: "testing",
  AWS_REGION: "us-east-1",
  AWS_DEFAULT_REGION: "us-east-1",
  AWS_EC2_METADATA_DISABLED: "true",
};

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startMoto(): Promise<MotoServer> {
  if (!fs.existsSync(MOTO_SERVER)) {
    throw new Error(
      `${MOTO_SERVER} is missing: run \`node scripts/setup.js --python\` (installs spark-jobs[dev], which includes moto[server])`,
    );
  }
  // moto's Step Functions interpreter calls the other emulated services on localhost:MOTO_PORT, so
  // the port is chosen first and given to both.
  const port = await freePort();
  const child: ChildProcess = spawn(MOTO_SERVER, ["-H", "127.0.0.1", "-p", String(port)], {
    env: { ...process.env, ...MOTO_ENV, MOTO_PORT: String(port) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      if (res.ok || res.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGTERM");
      throw new Error(`moto_server did not answer on ${endpoint} within 60 s: ${stderr}`);
    }
    await sleep(200);
  }
  return {
    endpoint,
    port,
    async api(pathname, body) {
      const res = await fetch(`${endpoint}${pathname}`, {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });
      if (!res.ok) throw new Error(`moto ${pathname} answered ${res.status}: ${await res.text()}`);
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
