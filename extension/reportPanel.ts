/**
 * The report webview. Strict CSP with a nonce, nothing remote; the webview announces itself with
 * a 'ready' message before the host posts anything (messages to a webview that is not listening
 * are lost); the panel is restored after a window reload by a serializer.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { FromWebview, ToWebview } from '../protocol/messages';

export const VIEW_TYPE = 'quantlens.report';

export interface ReportSource {
  /** Everything the panel shows (report, sweep, mixed precision), replayed when it (re)loads. */
  views(): ToWebview[];
  onMessage(m: FromWebview): void;
}

export class ReportPanel {
  private static instance: ReportPanel | undefined;
  private ready = false;
  private pending: ToWebview | undefined;
  /** The view asked for before the webview was ready: applied on 'ready'. */
  private pendingFocus: ToWebview['type'] | undefined;

  static show(context: vscode.ExtensionContext, source: ReportSource, focus?: ToWebview['type']): ReportPanel {
    if (ReportPanel.instance) {
      ReportPanel.instance.panel.reveal(undefined, true);
    } else {
      const panel = vscode.window.createWebviewPanel(
        VIEW_TYPE,
        'QuantLens Report',
        { viewColumn: vscode.ViewColumn.Active, preserveFocus: false },
        {
          enableScripts: true,
          localResourceRoots: [vscode.Uri.joinPath(context.extensionUri, 'out')],
        },
      );
      ReportPanel.instance = new ReportPanel(panel, context, source);
    }
    ReportPanel.instance.refresh(focus);
    return ReportPanel.instance;
  }

  static restore(panel: vscode.WebviewPanel, context: vscode.ExtensionContext, source: ReportSource): void {
    ReportPanel.instance?.panel.dispose();
    ReportPanel.instance = new ReportPanel(panel, context, source);
  }

  static post(message: ToWebview): void {
    ReportPanel.instance?.post(message);
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    private readonly source: ReportSource,
  ) {
    panel.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(context.extensionUri, 'out')] };
    panel.webview.html = html(panel.webview, context.extensionUri);
    panel.webview.onDidReceiveMessage((m: FromWebview) => {
      if (m.type === 'ready') {
        this.ready = true;
        this.refresh(this.pendingFocus);
        this.pendingFocus = undefined;
        const waiting = this.pending;
        this.pending = undefined;
        if (waiting) this.post(waiting);
      } else {
        source.onMessage(m);
      }
    });
    panel.onDidDispose(() => {
      if (ReportPanel.instance === this) ReportPanel.instance = undefined;
    });
  }

  /** Replay every view; the last one posted is the one the webview shows. */
  refresh(focus?: ToWebview['type']): void {
    if (!this.ready) {
      this.pendingFocus = focus ?? this.pendingFocus;
      return;
    }
    const views = this.source.views();
    const ordered = focus ? [...views.filter((v) => v.type !== focus), ...views.filter((v) => v.type === focus)] : views;
    const report = views.find((v) => v.type === 'report');
    if (report?.type === 'report') this.panel.title = `QuantLens: ${report.report.model.path.split(/[\\/]/).pop()}`;
    for (const v of ordered) this.post(v);
  }

  private post(message: ToWebview): void {
    if (!this.ready) {
      // Messages to a webview that is not listening yet are lost: views are replayed on
      // 'ready'; only a transient one (busy/error) waits here.
      if (message.type === 'busy' || message.type === 'error') this.pending = message;
      return;
    }
    void this.panel.webview.postMessage(message);
  }
}

function html(webview: vscode.Webview, extensionUri: vscode.Uri): string {
  const nonce = randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'out', 'webview.js'));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'out', 'webview.css'));
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>QuantLens Report</title>
</head>
<body>
<div id="app"></div>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}
