/**
 * Starts the QuantLens engine (engine/server.ts, bundled as out/server.js) as a language server
 * over IPC and sends it requests with a cancellable progress notification. If the engine dies,
 * the client restarts it and the user is told; the next request works.
 */
import * as vscode from 'vscode';
import {
  CloseAction, ErrorAction, LanguageClient, type LanguageClientOptions, type ServerOptions, TransportKind, WorkDoneProgress,
} from 'vscode-languageclient/node';
import type { RequestDef } from '../protocol/messages';

export class EngineClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient> | undefined;
  private seq = 0;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.LogOutputChannel,
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
          this.output.appendLine('[engine] the QuantLens engine stopped unexpectedly; restarting it');
          void vscode.window.showWarningMessage('QuantLens: the analysis engine stopped unexpectedly and was restarted. Run the command again.');
          return { action: CloseAction.Restart };
        },
      },
    };
    const client = new LanguageClient('quantlens', 'QuantLens Engine', serverOptions, clientOptions);
    this.starting = client.start().then(() => (this.client = client));
    return this.starting;
  }

  /** Send a request with a progress notification that the user can cancel. */
  async request<P extends object, R>(def: RequestDef<P, R>, params: P, title: string): Promise<R> {
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
        return (await client.sendRequest(def.method, { ...params, workDoneToken }, token)) as R;
      } finally {
        sub.dispose();
      }
    });
  }

  /** A request without progress UI (fast ones, e.g. the outline). */
  async quickRequest<P extends object, R>(def: RequestDef<P, R>, params: P): Promise<R> {
    const client = await this.start();
    return (await client.sendRequest(def.method, params)) as R;
  }

  async dispose(): Promise<void> {
    await this.client?.stop();
  }
}
