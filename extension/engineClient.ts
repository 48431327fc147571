/**
 * Starts the QuantLens engine (engine/server.ts, bundled as out/server.js) as a language server
 * over IPC and sends it requests with a cancellable progress notification. If the engine dies,
 * the client restarts it and the user is told; the next request works. A new engine knows nothing:
 * every time one starts, it is given back the paths the user allowed and whatever else the
 * extension hands `onEngineStart` (the open outlines, the report on screen).
 */
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  TransportKind,
  WorkDoneProgress,
} from 'vscode-languageclient/node';
import { AllowPathRequest, type RequestDef } from '../protocol/messages';

/** More engine deaths than this within RESTART_WINDOW_MS: stop restarting and say so. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

export class EngineClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient> | undefined;
  private seq = 0;
  private deaths: number[] = [];
  /** Paths the user allowed, in order: a restarted engine must be told again. */
  private readonly allowed = new Set<string>();

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.LogOutputChannel,
    /** What a freshly started engine is sent once it runs, after the allowed paths. */
    private readonly onEngineStart: (send: <P extends object, R>(def: RequestDef<P, R>, params: P) => Promise<R>) => Promise<void>,
  ) {}

  private start(): Promise<LanguageClient> {
    if (this.starting) return this.starting;
    const module = this.context.asAbsolutePath('out/server.js');
    const serverOptions: ServerOptions = {
      run: { module, transport: TransportKind.ipc },
      debug: { module, transport: TransportKind.ipc },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'quantlens-outline' }, { language: 'python' }],
      outputChannel: this.output,
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => {
          const now = Date.now();
          this.deaths = [...this.deaths.filter((t) => now - t < RESTART_WINDOW_MS), now];
          if (this.deaths.length > MAX_RESTARTS) {
            this.output.appendLine(`[engine] the QuantLens engine stopped ${this.deaths.length} times within a minute; not restarting it`);
            // The next command starts a fresh engine: the user decides when to try again.
            this.starting = undefined;
            this.client = undefined;
            this.deaths = [];
            void vscode.window
              .showErrorMessage(
                `QuantLens: the analysis engine stopped ${MAX_RESTARTS + 1} times within a minute and was not restarted. The log may say why; the next command starts it again.`,
                'Show Log',
              )
              .then((c) => c && this.output.show());
            return { action: CloseAction.DoNotRestart };
          }
          this.output.appendLine('[engine] the QuantLens engine stopped unexpectedly; restarting it');
          void vscode.window.showWarningMessage(
            'QuantLens: the analysis engine stopped unexpectedly and was restarted. A command that was running must be run again; the report on screen is kept.',
          );
          return { action: CloseAction.Restart };
        },
      },
    };
    const client = new LanguageClient('quantlens', 'QuantLens Engine', serverOptions, clientOptions);
    // Running again after Starting: the first start, or a restart after the engine died.
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) void this.restore(client);
    });
    this.starting = client.start().then(() => (this.client = client));
    return this.starting;
  }

  /** Give a new engine what the old one knew; a failure is logged (the next command still works). */
  private async restore(client: LanguageClient): Promise<void> {
    const send = async <P extends object, R>(def: RequestDef<P, R>, params: P) => (await client.sendRequest(def.method, params)) as R;
    try {
      for (const p of this.allowed) await send(AllowPathRequest, { path: p });
      await this.onEngineStart(send);
    } catch (e) {
      this.output.appendLine(`[engine] could not restore the engine's state: ${(e as Error).message}`);
    }
  }

  /** What the engine is given at start changed (a report came back on screen): give it again. */
  resync(): void {
    if (this.client) void this.restore(this.client);
  }

  /** Paths the user pointed at explicitly: the engine may read them even outside the workspace. */
  async allow(paths: readonly string[]): Promise<void> {
    const client = await this.start();
    for (const p of paths) {
      this.allowed.add(p);
      await client.sendRequest(AllowPathRequest.method, { path: p });
    }
  }

  /** Send a request with a progress notification that the user can cancel. */
  async request<P extends object, R>(def: RequestDef<P, R>, params: P & { userPicked?: string[] }, title: string): Promise<R> {
    const { userPicked, ...rest } = params;
    if (userPicked) await this.allow(userPicked);
    const client = await this.start();
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
      const workDoneToken = `quantlens-${++this.seq}`;
      let last = 0;
      const sub = client.onProgress(WorkDoneProgress.type, workDoneToken, (v) => {
        if (v.kind === 'end') return;
        const pct = v.percentage ?? last;
        progress.report({ message: v.message, increment: Math.max(0, pct - last) });
        last = Math.max(last, pct);
      });
      try {
        return (await client.sendRequest(def.method, { ...rest, workDoneToken }, token)) as R;
      } finally {
        sub.dispose();
      }
    });
  }

  /** A request without progress UI (fast ones, e.g. the outline). */
  async quickRequest<P extends object, R>(def: RequestDef<P, R>, params: P, userPicked: string[] = []): Promise<R> {
    await this.allow(userPicked);
    const client = await this.start();
    return (await client.sendRequest(def.method, params)) as R;
  }

  async dispose(): Promise<void> {
    await this.client?.stop();
  }
}
