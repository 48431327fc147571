// Element construction without innerHTML: report strings (node and tensor names) are never parsed
// as markup, and no style attributes are written (the CSP has no 'unsafe-inline' for styles).

type Child = Node | string | number | null | undefined | false;
type Children = Child | Children[];
type Attrs = Record<string, string | number | boolean | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Children[]): HTMLElementTagNameMap[K];
export function h(tag: string, attrs?: Attrs | null, ...children: Children[]): HTMLElement;
export function h(tag: string, attrs?: Attrs | null, ...children: Children[]): HTMLElement {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'class') el.className = String(value);
      else el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(parent: Node, children: Children[]): void {
  for (const child of children) {
    if (Array.isArray(child)) append(parent, child);
    else if (child === null || child === undefined || child === false) continue;
    else parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

export function clear(el: Element): void {
  el.replaceChildren();
}

/**
 * Scrolls only the table's own box: scrollIntoView would also scroll the page, jumping away from
 * the summary when a saved selection is restored deep in a list.
 */
export function revealRow(tr: HTMLTableRowElement): void {
  const table = tr.closest('table');
  const box = table?.parentElement;
  if (!table || !box) return;
  const header = table.tHead?.offsetHeight ?? 0;
  const top = tr.offsetTop;
  const bottom = top + tr.offsetHeight;
  if (top - header < box.scrollTop) box.scrollTop = top - header;
  else if (bottom > box.scrollTop + box.clientHeight) box.scrollTop = bottom - box.clientHeight;
}

/** Roving selection in a table: the selected row is the one Tab stop, marked for assistive tech. */
export function markRowSelected(tr: HTMLTableRowElement, selected: boolean): void {
  tr.classList.toggle('selected', selected);
  tr.setAttribute('aria-selected', String(selected));
  tr.tabIndex = selected ? 0 : -1;
}

/** What a sortable table's header needs of a column. */
export interface SortableColumn<K extends string> {
  key: K;
  label: string;
  /** Header tooltip. */
  title: string;
  numeric: boolean;
}

/** The header row of a sortable table: a button per column, recorded in `buttons` by key. */
export function sortableHeaderRow<K extends string>(
  columns: readonly SortableColumn<K>[],
  buttons: Map<K, HTMLButtonElement>,
  onClick: (key: K) => void,
): HTMLTableRowElement {
  return h(
    'tr',
    null,
    columns.map((c) => {
      const button = h(
        'button',
        { type: 'button', class: 'sort', 'data-key': c.key, title: `${c.title} — sort` },
        h('span', { class: 'label' }, c.label),
        h('span', { class: 'sort-indicator', 'aria-hidden': 'true' }),
      );
      button.addEventListener('click', () => onClick(c.key));
      buttons.set(c.key, button);
      return h('th', { scope: 'col', class: `col-${c.key}${c.numeric ? ' num' : ''}` }, button);
    }),
  );
}

/** Show the sort on the header buttons: the active one, its arrow, and aria-sort on its cell. */
export function showSort<K extends string>(buttons: Map<K, HTMLButtonElement>, key: K, descending: boolean): void {
  for (const [k, button] of buttons) {
    const active = k === key;
    button.classList.toggle('active', active);
    const indicator = button.querySelector('.sort-indicator');
    if (indicator) indicator.textContent = active ? (descending ? '▼' : '▲') : '';
    const th = button.parentElement;
    if (th) {
      if (active) th.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
      else th.removeAttribute('aria-sort');
    }
  }
}
