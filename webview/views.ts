// The top-level tabs: Layers (the per-layer report), Sensitivity, Sweep, Mixed precision and Compare.
// Built on vscode-tabs, whose styles are constructable stylesheets (no inline <style>), so they run
// under the webview CSP. Panel visibility is set synchronously here (the element itself reflects
// it a microtask later) so a view can lay out and size its charts right after being shown.
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-tab-panel/index.js';
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import { h } from './dom';

export type TabId = 'layers' | 'sensitivity' | 'sweep' | 'mixed' | 'compare';

export const TABS: readonly { id: TabId; label: string }[] = [
  { id: 'layers', label: 'Layers' },
  { id: 'sensitivity', label: 'Sensitivity' },
  { id: 'sweep', label: 'Sweep' },
  { id: 'mixed', label: 'Mixed precision' },
  { id: 'compare', label: 'Compare' },
];

export function isTabId(value: unknown): value is TabId {
  return TABS.some((t) => t.id === value);
}

export class Tabs {
  readonly element: HTMLElement;
  private readonly headers = new Map<TabId, HTMLElement>();
  private readonly panels = new Map<TabId, HTMLElement>();
  private readonly badges = new Map<TabId, HTMLElement>();
  private current: TabId;

  /** onChange runs after the panel is visible; byUser tells a click or key from a message. */
  constructor(
    initial: TabId,
    private readonly onChange: (tab: TabId, byUser: boolean) => void,
  ) {
    this.current = initial;
    const index = TABS.findIndex((t) => t.id === initial);
    this.element = h('vscode-tabs', { class: 'view-tabs', 'selected-index': index, 'aria-label': 'QuantLens views' });
    for (const t of TABS) {
      const badge = h('vscode-badge', { slot: 'content-after', variant: 'counter', class: 'tab-badge', hidden: true });
      const header = h('vscode-tab-header', { 'data-tab': t.id }, t.label, badge);
      this.badges.set(t.id, badge);
      this.headers.set(t.id, header);
      this.element.append(header);
    }
    for (const t of TABS) {
      const panel = h('vscode-tab-panel', { 'data-tab': t.id, class: `view-panel view-${t.id}`, hidden: t.id !== initial });
      this.panels.set(t.id, panel);
      this.element.append(panel);
    }
    this.element.addEventListener('vsc-tabs-select', (e) => {
      const tab = TABS[(e as CustomEvent<{ selectedIndex: number }>).detail.selectedIndex]?.id;
      if (tab) this.activate(tab, true);
    });
    // vscode-tabs moves focus with the arrow keys and selects with Enter; Space selects too, as on
    // any button-like control.
    this.element.addEventListener('keydown', (e) => {
      const header = (e.target as Element | null)?.closest('vscode-tab-header');
      if (e.key === ' ' && header) {
        e.preventDefault();
        const tab = header.getAttribute('data-tab');
        if (isTabId(tab)) this.activate(tab, true);
      }
    });
  }

  get active(): TabId {
    return this.current;
  }

  panel(tab: TabId): HTMLElement {
    return this.panels.get(tab)!;
  }

  isShown(tab: TabId): boolean {
    return this.current === tab;
  }

  /** Shows a tab. Synchronous: the panel has its layout when onChange runs. */
  activate(tab: TabId, byUser = false): void {
    const index = TABS.findIndex((t) => t.id === tab);
    if (index < 0) return;
    const changed = tab !== this.current;
    this.current = tab;
    if (this.element.getAttribute('selected-index') !== String(index)) this.element.setAttribute('selected-index', String(index));
    for (const t of TABS) {
      this.panels.get(t.id)!.toggleAttribute('hidden', t.id !== tab);
      const header = this.headers.get(t.id)!;
      header.toggleAttribute('active', t.id === tab);
      header.setAttribute('aria-selected', String(t.id === tab));
    }
    if (changed || byUser) this.onChange(tab, byUser);
  }

  /** A small count beside a tab's name; null hides it. */
  setBadge(tab: TabId, text: string | null, title?: string): void {
    const badge = this.badges.get(tab);
    if (!badge) return;
    badge.textContent = text ?? '';
    badge.toggleAttribute('hidden', text === null);
    if (title) badge.setAttribute('title', title);
    else badge.removeAttribute('title');
  }
}

/** The text shown in a tab before its data exists: what produces it. */
export function hint(title: string, lines: (string | Node)[]): HTMLElement {
  return h(
    'div',
    { class: 'view-hint' },
    h('h2', null, title),
    lines.map((l) => h('p', { class: 'muted' }, l)),
  );
}

/** "Drop axis: Linear | Log" above a chart. */
export function axisToggle(id: string, log: boolean, onChange: (log: boolean) => void): HTMLElement {
  const group = h(
    'div',
    { id, class: 'segmented axis-toggle', role: 'group', 'aria-label': 'Drop axis scale' },
    h('span', { class: 'muted seg-label' }, 'Drop axis'),
  );
  const buttons: HTMLButtonElement[] = [];
  for (const [value, label] of [
    [false, 'Linear'],
    [true, 'Log'],
  ] as const) {
    const button = h(
      'button',
      { type: 'button', class: `seg${value === log ? ' active' : ''}`, 'aria-pressed': String(value === log), 'data-log': String(value) },
      label,
    );
    button.addEventListener('click', () => {
      for (const b of buttons) {
        const on = b === button;
        b.classList.toggle('active', on);
        b.setAttribute('aria-pressed', String(on));
      }
      onChange(value);
    });
    buttons.push(button);
    group.append(button);
  }
  return group;
}
