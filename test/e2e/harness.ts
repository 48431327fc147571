/**
 * A real VS Code for the end-to-end tests: code-server (installed by scripts/install-e2e.sh) on
 * 127.0.0.1 with its own config/data/extension folders, the packaged VSIX installed into it, and
 * Debian's Chromium driven by playwright-core. Screenshots go to test-artifacts/e2e/.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type BrowserContext, type FrameLocator, type Locator, type Page, chromium } from 'playwright-core';

export const root = path.resolve(__dirname, '../..');
export const artifacts = path.join(root, 'test-artifacts', 'e2e');
const codeServer = path.join(root, '.e2e/code-server/node_modules/.bin/code-server');
export const vsix = path.join(root, 'out/quantlens-linux-x64.vsix');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export class VsCode {
  page!: Page;
  private context!: BrowserContext;
  private server!: ChildProcess;
  private shot = 0;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-e2e-'));
  serverLog = '';
  /** Uncaught errors and crashes of the workbench page, for timeout messages. */
  private pageErrors: string[] = [];

  constructor(readonly workspace: string) {}

  private env(): NodeJS.ProcessEnv {
    const d = this.dir;
    return { ...process.env, EXTENSIONS_GALLERY: '{}', XDG_CONFIG_HOME: `${d}/xc`, XDG_DATA_HOME: `${d}/xd`, XDG_CACHE_HOME: `${d}/xcache` };
  }

  private args(): string[] {
    return ['--user-data-dir', `${this.dir}/ud`, '--extensions-dir', `${this.dir}/ext`];
  }

  async start(): Promise<void> {
    if (!fs.existsSync(codeServer)) throw new Error(`code-server is missing: run scripts/install-e2e.sh (${codeServer})`);
    if (!fs.existsSync(vsix)) throw new Error(`the VSIX is missing: run npm run package (${vsix})`);
    // Screenshots of this run only: an older run's would mix in by name.
    fs.rmSync(artifacts, { recursive: true, force: true });
    fs.mkdirSync(artifacts, { recursive: true });
    // Install the PACKAGED extension, as a user would.
    execFileSync(codeServer, [...this.args(), '--install-extension', vsix], { env: this.env(), stdio: 'pipe' });
    const settings = path.join(this.dir, 'ud/User/settings.json');
    fs.mkdirSync(path.dirname(settings), { recursive: true });
    fs.writeFileSync(
      settings,
      JSON.stringify({
        'workbench.startupEditor': 'none',
        'security.workspace.trust.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'workbench.tips.enabled': false,
        'extensions.ignoreRecommendations': true,
        'editor.hover.delay': 200,
        'window.commandCenter': false,
      }),
    );
    const port = await freePort();
    this.server = spawn(
      codeServer,
      [
        '--bind-addr',
        `127.0.0.1:${port}`,
        '--auth',
        'none',
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
        ...this.args(),
        this.workspace,
      ],
      { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.server.stdout!.on('data', (b) => (this.serverLog += b));
    this.server.stderr!.on('data', (b) => (this.serverLog += b));
    await waitFor(
      async () =>
        await fetch(`http://127.0.0.1:${port}/healthz`)
          .then((r) => r.ok)
          .catch(() => false),
      30000,
      'code-server to listen',
    );
    this.context = await chromium.launchPersistentContext(path.join(this.dir, 'chromium'), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1500, height: 950 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    this.page = this.context.pages()[0] ?? (await this.context.newPage());
    this.page.on('pageerror', (e) => this.pageErrors.push(e.message.slice(0, 300)));
    this.page.on('crash', () => this.pageErrors.push('the page crashed'));
    await this.page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(this.workspace)}`);
    await this.page.locator('.monaco-workbench').waitFor({ timeout: 60000 });
    await this.page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60000 });
  }

  async screenshot(name: string): Promise<string> {
    const file = path.join(artifacts, `${String(++this.shot).padStart(2, '0')}-${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** The explorer row for a workspace-relative path, expanding folders on the way. */
  async explorerItem(relPath: string) {
    const parts = relPath.split('/');
    for (let i = 0; i < parts.length; i++) {
      const row = this.page.locator(`.explorer-folders-view .monaco-list-row[aria-label="${parts[i]}"]`).first();
      await row.waitFor({ timeout: 20000 });
      if (i < parts.length - 1 && (await row.getAttribute('aria-expanded')) === 'false') await row.click();
      if (i === parts.length - 1) return row;
    }
    throw new Error('unreachable');
  }

  /**
   * Right-click an explorer item and choose a context-menu entry. A right-click right after focus
   * was inside a webview iframe can be swallowed, so retry until the menu really opens, taking the
   * focus back to the workbench before each retry.
   */
  async contextMenu(relPath: string, entry: string): Promise<void> {
    const row = await this.explorerItem(relPath);
    const item = this.page.locator('.context-view .action-item', { hasText: entry }).first();
    let attempt = 0;
    await this.waitUi(
      async () => {
        if (attempt++ > 0) await this.reclaimFocus();
        await this.page.keyboard.press('Escape'); // close whatever a failed step left open
        await row.click({ button: 'right', timeout: 5000 });
        return shows(item, patience(attempt));
      },
      60000,
      `the context menu with "${entry}"`,
    );
    await this.screenshot(`menu-${entry.replace(/\W+/g, '-').toLowerCase()}`);
    await item.click();
    await this.page
      .locator('.context-view .monaco-menu')
      .waitFor({ state: 'detached', timeout: 10000 })
      .catch(() => {});
  }

  /** Run a command from the palette (extension commands appear only after activation: retry). */
  async palette(title: string): Promise<void> {
    let attempt = 0;
    await this.waitUi(
      async () => {
        if (attempt++ > 0) await this.reclaimFocus();
        await this.page.keyboard.press('F1');
        const input = this.page.locator('.quick-input-widget input');
        await input.waitFor({ timeout: 5000 });
        await input.fill(`>${title}`);
        // Click the row whose label IS the title: Enter would run whichever row fuzzy matching put
        // first ("Notifications: Toggle Do Not Disturb Mode" for "Clear All Notifications").
        const row = this.page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
        if (await shows(row, patience(attempt))) {
          await row.click({ timeout: 5000 });
          return true;
        }
        await this.page.keyboard.press('Escape');
        return false;
      },
      60000,
      `command "${title}" in the palette`,
    );
  }

  /**
   * Move keyboard focus from wherever it is (a webview's iframe keeps keys to itself) back to the
   * explorer, without clicking anything that would act.
   */
  private async reclaimFocus(): Promise<void> {
    await this.page
      .locator('.explorer-folders-view .monaco-list')
      .first()
      .focus({ timeout: 2000 })
      .catch(() => {});
  }

  /**
   * waitFor on the workbench; a timeout says what the page looked like (CI keeps no screenshots):
   * the focused element, open dialogs, menus and toasts, whether the page still answers, and the
   * page errors and crashes seen so far.
   */
  private async waitUi(fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    try {
      await waitFor(fn, timeoutMs, what);
    } catch (e) {
      const shot = await this.screenshot('timeout').catch(() => '(no screenshot)');
      throw new Error(`${(e as Error).message}\nthe page: ${await this.describe()}\nscreenshot: ${shot}`);
    }
  }

  private async describe(): Promise<string> {
    const state = await Promise.race([
      // A string, not a function: this project's types have no DOM.
      this.page.evaluate<string>(`(() => {
        const text = (sel) => [...document.querySelectorAll(sel)].filter((e) => e.offsetParent !== null)
          .map((e) => (e.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 160));
        const a = document.activeElement;
        return JSON.stringify({
          focus: a ? (a.tagName + '.' + a.className + ' ' + (a.getAttribute('aria-label') || '')).slice(0, 200) : null,
          dialogs: text('.monaco-dialog-box'),
          menus: text('.context-view'),
          quickInput: text('.quick-input-widget'),
          toasts: text('.notifications-toasts .notification-toast'),
        });
      })()`),
      new Promise<string>((r) => setTimeout(() => r('(the page did not answer in 5 s)'), 5000)),
    ]).catch((e) => `(evaluate failed: ${(e as Error).message})`);
    return `${state}; page errors: ${JSON.stringify(this.pageErrors.slice(-5))}`;
  }

  /** PIDs of the QuantLens engine processes this instance started (their command line names our private extensions folder). */
  enginePids(): number[] {
    const marker = path.join(this.dir, 'ext');
    const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
    return out
      .split('\n')
      .filter((l) => l.includes(marker) && l.includes('out/server.js'))
      .map((l) => Number(l.trim().split(/\s+/)[0]));
  }

  /** A new browser tab on a URL (a standalone export), in the same browser. */
  async open(url: string): Promise<Page> {
    const page = await this.context.newPage();
    await page.goto(url);
    return page;
  }

  /** The report webview's document. */
  webview(): FrameLocator {
    return this.page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
  }

  notification(text: string | RegExp) {
    return this.page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
  }

  /**
   * The text of the notification matching `text`: a toast or, when VS Code put it straight into the
   * notification center (see clickNotificationButton), there. A timeout names what the extension
   * logged, since CI keeps no screenshots.
   */
  async notificationText(text: RegExp, timeout: number): Promise<string> {
    const toast = this.notification(text);
    const item = this.page.locator('.notifications-center .notification-list-item', { hasText: text }).first();
    const start = Date.now();
    let centerOpen = false;
    try {
      await waitFor(
        async () => {
          if ((await toast.isVisible()) || (await item.isVisible())) return true;
          if (!centerOpen && Date.now() - start > 10000) {
            await this.palette('Notifications: Show Notifications');
            centerOpen = true;
          }
          return false;
        },
        timeout,
        `a notification matching ${text}`,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}; the extension logged:\n${this.extensionLog()}`);
    }
    const shown = (await toast.isVisible()) ? toast : item;
    const content = (await shown.textContent()) ?? '';
    if (centerOpen) await this.palette('Notifications: Hide Notifications');
    return content;
  }

  /** The last lines of the extension's own log (its output channel), for failure messages. */
  extensionLog(lines = 30): string {
    const logs = path.join(this.dir, 'ud/logs');
    const files = fs.existsSync(logs)
      ? (fs.readdirSync(logs, { recursive: true }) as string[]).filter((f) => f.endsWith('QuantLens.log')).map((f) => path.join(logs, f))
      : [];
    return files.map((f) => fs.readFileSync(f, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')).join('\n') || '(no log)';
  }

  /**
   * Click a notification's button, as a toast or, when VS Code put the notification straight into
   * the notification center (it does so at times, e.g. while another toast is animating out), there.
   */
  async clickNotificationButton(text: RegExp, label: string, timeout = 30000): Promise<void> {
    const toast = this.notification(text).getByRole('button', { name: label, exact: true });
    if (await shows(toast, Math.min(15000, timeout))) return toast.click();
    await this.palette('Notifications: Show Notifications');
    const item = this.page.locator('.notifications-center .notification-list-item', { hasText: text }).first();
    await item.getByRole('button', { name: label, exact: true }).click({ timeout });
  }

  async stop(): Promise<void> {
    await this.context?.close().catch(() => {});
    if (this.server && this.server.exitCode === null) {
      this.server.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * How long attempt n (from 1) waits for a menu or palette row to show: 3 s, then longer, since a
 * loaded machine can take longer than that to render one and a fixed wait would never see it.
 */
const patience = (attempt: number) => Math.min(3000 * attempt, 12000);

/**
 * Whether a locator becomes visible within `timeout` ms. (Playwright's isVisible ignores its timeout
 * and answers at once: a menu still rendering reads as absent, and the retry's Escape then closes it.)
 */
export const shows = (l: Locator, timeout: number): Promise<boolean> =>
  l.waitFor({ state: 'visible', timeout }).then(
    () => true,
    () => false,
  );

export async function waitFor(fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
