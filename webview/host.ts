// The two places this bundle runs: a VS Code webview (messages and saved state through
// acquireVsCodeApi) and a standalone exported HTML file (report embedded in the page, no host).
import type { FromWebview, WebviewState } from '../protocol/messages';
import { type EmbeddedSession, sessionOf } from './reportData';

/**
 * What this webview keeps through reloads: WebviewState's keys unchanged, plus the active tab and
 * the sweep table's sort (extra keys are fine: VS Code stores any JSON).
 */
export interface ViewState extends WebviewState {
  activeTab?: string;
  sweepSortKey?: string;
  sweepSortDescending?: boolean;
}

interface VsCodeApi {
  postMessage(message: FromWebview): void;
  getState(): ViewState | undefined;
  setState(state: ViewState): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** Used when the standalone page does not say (data-sqnr-warning-db); matches a common 8-bit bar. */
export const DEFAULT_SQNR_WARNING_DB = 20;

export const EMBEDDED_REPORT_ID = 'quantlens-report';

export interface Host {
  readonly inVsCode: boolean;
  post(message: FromWebview): void;
  state(): ViewState;
  saveState(patch: Partial<ViewState>): void;
}

export function connectHost(): Host {
  if (typeof acquireVsCodeApi === 'function') {
    // acquireVsCodeApi may be called only once per webview, so the api object is kept here.
    const api = acquireVsCodeApi();
    let state: ViewState = { ...(api.getState() ?? {}) };
    return {
      inVsCode: true,
      post: (message) => api.postMessage(message),
      state: () => state,
      saveState(patch) {
        state = { ...state, ...patch };
        api.setState(state);
      },
    };
  }
  let state: ViewState = {};
  return {
    inVsCode: false,
    post: () => undefined,
    state: () => state,
    saveState(patch) {
      state = { ...state, ...patch };
    },
  };
}

/**
 * Reads what a standalone export embeds as <script type="application/json" id="quantlens-report">:
 * a session (protocol/messages.ts SessionExport: report, sweep, mixed precision) or, from older
 * exports, a bare report.
 */
export function readEmbeddedSession(): EmbeddedSession {
  const el = document.getElementById(EMBEDDED_REPORT_ID);
  if (!el) throw new Error(`This page has no embedded report (expected a <script type="application/json" id="${EMBEDDED_REPORT_ID}"> element).`);
  let raw: unknown;
  try {
    raw = JSON.parse(el.textContent ?? '');
  } catch (e) {
    throw new Error(`The embedded report is not valid JSON: ${(e as Error).message}`);
  }
  const attr = el.getAttribute('data-sqnr-warning-db');
  const parsed = attr === null || attr.trim() === '' ? NaN : Number(attr);
  const sqnrWarningDb = Number.isFinite(parsed) ? parsed : DEFAULT_SQNR_WARNING_DB;
  return sessionOf(raw, sqnrWarningDb);
}
