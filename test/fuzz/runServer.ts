/**
 * Server cases go to ONE long-lived engine process (out/server.js over node IPC, as VS Code's
 * language client speaks to it), which must keep answering: after every request a probe (the
 * outline of a valid model) must come back. A request that gets no answer within the time limit,
 * a process that dies or stops answering, or memory past the limit is a failure of that case; the
 * engine is then restarted for the next one.
 */
import { type ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { IPCMessageReader, IPCMessageWriter, type MessageConnection, ResponseError, createMessageConnection } from 'vscode-jsonrpc/node';
import { ROOT, baseModels } from './fixtures';
import { type CaseDirs, expand } from './layout';
import { DEFAULT_LIMITS, type Limits, procMemory } from './runCli';
import type { Observation, ServerCase } from './types';

const SERVER = path.join(ROOT, 'out/server.js');

function expandDeep(v: unknown, d: CaseDirs): unknown {
  if (typeof v === 'string') return expand(v, d);
  if (Array.isArray(v)) return v.map((x) => expandDeep(x, d));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expandDeep(x, d)]));
  return v;
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown } | { timeout: true };

function within<T>(p: Promise<T>, ms: number): Promise<Settled<T>> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ timeout: true }), ms);
    p.then(
      (value) => (clearTimeout(t), resolve({ ok: true, value })),
      (error) => (clearTimeout(t), resolve({ ok: false, error })),
    );
  });
}

export class EngineServer {
  private child: ChildProcess | undefined;
  private conn: MessageConnection | undefined;
  private exited = false;
  private log: string[] = [];
  private probeModel: string;
  /** Engine processes started (1 + restarts after failures). */
  starts = 0;

  constructor(
    private workspace: string,
    private limits: Limits = DEFAULT_LIMITS,
  ) {
    const probeDir = path.join(workspace, '_probe');
    fs.mkdirSync(probeDir, { recursive: true });
    this.probeModel = path.join(probeDir, 'model.onnx');
    fs.writeFileSync(this.probeModel, baseModels().tiny.bytes);
  }

  private async start(): Promise<void> {
    this.starts++;
    this.exited = false;
    const child = fork(SERVER, ['--node-ipc'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
    child.stderr?.on('data', (b: Buffer) => this.log.push(b.toString()));
    child.on('exit', (code, signal) => {
      this.exited = true;
      this.log.push(`engine exited (code ${code}, signal ${signal})`);
    });
    const conn = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
    conn.onNotification('window/logMessage', (p: { type: number; message: string }) => void this.log.push(p.message));
    conn.onNotification('$/progress', () => {});
    conn.onNotification('textDocument/publishDiagnostics', () => {});
    conn.onRequest('window/workDoneProgress/create', () => null);
    conn.onError(() => {});
    conn.listen();
    this.child = child;
    this.conn = conn;
    await conn.sendRequest('initialize', {
      processId: process.pid,
      rootUri: null,
      capabilities: { window: { workDoneProgress: true } },
      workspaceFolders: [{ uri: pathToFileURL(this.workspace).href, name: 'fuzz' }],
    });
    await conn.sendNotification('initialized', {});
  }

  stop(): void {
    this.conn?.dispose();
    this.child?.kill('SIGKILL');
    this.child = undefined;
    this.conn = undefined;
  }

  /** Does the engine still answer a valid request? */
  private async probe(): Promise<boolean> {
    if (!this.conn || this.exited) return false;
    const r = await within(this.conn.sendRequest('quantlens/outline', { modelPath: this.probeModel, uri: 'quantlens-outline:probe' }), 15_000);
    return 'ok' in r && r.ok && typeof (r.value as { text?: unknown })?.text === 'string';
  }

  async run(c: ServerCase, d: CaseDirs): Promise<Omit<Observation, 'changed'>> {
    if (!this.conn || this.exited) await this.start();
    const t0 = Date.now();
    this.log = [];
    const pid = this.child!.pid!;
    let peak = 0;
    let memoryKilled = false;
    const poll = setInterval(() => {
      const m = procMemory(pid);
      if (!m) return;
      peak = Math.max(peak, m.rss);
      if (m.rss > this.limits.memoryBytes) {
        memoryKilled = true;
        this.child?.kill('SIGKILL');
      }
    }, 50);
    const params = expandDeep(c.params, d);
    const settled = await within(this.conn!.sendRequest(c.method, params), this.limits.timeoutMs);
    clearInterval(poll);
    const timedOut = 'timeout' in settled;
    let response: Observation['response'];
    if ('ok' in settled) {
      if (settled.ok) response = { result: settled.value };
      else if (settled.error instanceof ResponseError) response = { error: { code: settled.error.code, message: settled.error.message } };
      else response = { error: { code: -1, message: String((settled.error as Error)?.message ?? settled.error) } };
    }
    // The engine must keep answering: a probe after every case.
    const alive = !timedOut && !memoryKilled && (await this.probe());
    const logText = this.log.join('\n');
    // A bug the engine only logged (an uncaught exception in a callback) is a crash of this case.
    const swallowed = /^(uncaught|unhandled rejection): /m.test(logText);
    if (!alive) this.stop();
    return {
      exitCode: null,
      signal: null,
      timedOut,
      peakRssBytes: peak,
      memoryKilled,
      stdout: '',
      stderr: logText,
      response: swallowed ? { error: { code: 2, message: `internal error logged: ${logText.slice(0, 300)}` } } : response,
      serverDied: !alive && !timedOut && !memoryKilled,
      ms: Date.now() - t0,
    };
  }
}
