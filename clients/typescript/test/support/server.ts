/**
 * Runs the real Python server (`python -m webhook_grpc serve`) on a free loopback port with a
 * temporary SQLite database, and waits until its health service says SERVING.
 *
 * The Python is `$WEBHOOK_GRPC_PYTHON`, or the repository's `.venv/bin/python` (`make install`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { create, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

// build/test/support/server.js -> the package folder.
const PACKAGE_DIR = fileURLToPath(new URL("../../../", import.meta.url));
const REPOSITORY = resolve(PACKAGE_DIR, "../..");
const PYTHON = process.env.WEBHOOK_GRPC_PYTHON ?? resolve(REPOSITORY, ".venv/bin/python");

/** A JSON file the Python tests share, by its path in the repository (e.g. `tests/vectors/…`). */
export function sharedJson<T>(path: string): T {
  return JSON.parse(readFileSync(resolve(REPOSITORY, path), "utf8")) as T;
}

/**
 * The settings of every test server, the Python tests' too (tests/support/test_settings.json),
 * as `WEBHOOK_GRPC_*` variables: lists comma-separated, like `tests/support/processes.py` does.
 */
function testSettingsEnvironment(): Record<string, string> {
  const settings = sharedJson<Record<string, unknown>>("tests/support/test_settings.json");
  return Object.fromEntries(
    Object.entries(settings)
      .filter(([name]) => !name.startsWith("_"))
      .map(([name, value]) => [
        `WEBHOOK_GRPC_${name.toUpperCase()}`,
        Array.isArray(value) ? value.join(",") : String(value),
      ]),
  );
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => done(port));
    });
  });
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** Rejects with a message naming `what` when `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A running server; `restart` keeps its port and database. */
export class TestServer {
  private process: ChildProcess | undefined;
  private output = "";

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly env: Record<string, string>,
  ) {}

  /** `host:port` for `new WebhooksClient(…)`. */
  get target(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The server's log so far (for failure messages). */
  get log(): string {
    return this.output;
  }

  /** Start a server on a free port with a fresh database; resolves once it is SERVING. */
  static async start(env: Record<string, string> = {}): Promise<TestServer> {
    if (!existsSync(PYTHON)) {
      throw new Error(`no Python at ${PYTHON}: run 'make install' or set WEBHOOK_GRPC_PYTHON`);
    }
    const dir = mkdtempSync(join(tmpdir(), "webhook-grpc-ts-"));
    const server = new TestServer(await freePort(), dir, env);
    await server.launch();
    return server;
  }

  private async launch(): Promise<void> {
    const child = spawn(PYTHON, ["-m", "webhook_grpc", "serve"], {
      cwd: this.dir,
      env: {
        ...inheritedEnvironment(),
        // delivery_timeout is also the shutdown grace: a restart takes about this long.
        ...testSettingsEnvironment(),
        WEBHOOK_GRPC_DATABASE_URL: `sqlite:///${join(this.dir, "webhooks.db")}`,
        WEBHOOK_GRPC_LISTEN: this.target,
        ...this.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.process = child;
    const collect = (chunk: Buffer): void => {
      this.output += chunk.toString("utf8");
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const deadline = Date.now() + 30_000;
    while (!(await serving(this.target))) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the server exited while starting:\n${this.output}`);
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`the server was not SERVING within 30 s:\n${this.output}`);
      }
      await delay(100);
    }
  }

  /** SIGTERM, and wait for the process to exit (SIGKILL after 15 s). */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    child.kill("SIGTERM");
    try {
      await withTimeout(exited, 15_000, "server stop");
    } catch {
      child.kill("SIGKILL");
      await withTimeout(exited, 5_000, "server kill");
    }
  }

  /** Stop, then start again on the same port with the same database. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stop and remove the temporary database. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** This process's environment without WEBHOOK_GRPC_* settings (a developer's own, say). */
function inheritedEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("WEBHOOK_GRPC_")),
  );
}

// grpc.health.v1.Health, described in code: the client's generated code does not include it.
const HEALTH: DescService = (() => {
  const file = create(FileDescriptorProtoSchema, {
    name: "grpc/health/v1/health.proto",
    package: "grpc.health.v1",
    syntax: "proto3",
    messageType: [
      {
        name: "HealthCheckRequest",
        field: [{ name: "service", number: 1, type: 9, label: 1, jsonName: "service" }],
      },
      {
        name: "HealthCheckResponse",
        field: [{ name: "status", number: 1, type: 5, label: 1, jsonName: "status" }],
      },
    ],
    service: [
      {
        name: "Health",
        method: [
          {
            name: "Check",
            inputType: ".grpc.health.v1.HealthCheckRequest",
            outputType: ".grpc.health.v1.HealthCheckResponse",
          },
        ],
      },
    ],
  });
  const service = createFileRegistry(file, () => undefined).getService("grpc.health.v1.Health");
  if (!service) throw new Error("health descriptor");
  return service;
})();

const SERVING = 1;

/** True when the server at `target` answers the health check with SERVING. */
async function serving(target: string): Promise<boolean> {
  const sessionManager = new Http2SessionManager(`http://${target}`);
  const transport = createGrpcTransport({ baseUrl: `http://${target}`, sessionManager });
  const health = createClient(HEALTH, transport) as unknown as {
    check(
      request: { service: string },
      options: { timeoutMs: number },
    ): Promise<{ status: number }>;
  };
  try {
    const response = await health.check({ service: "" }, { timeoutMs: 1_000 });
    return response.status === SERVING;
  } catch {
    return false; // not listening yet
  } finally {
    sessionManager.abort();
  }
}
