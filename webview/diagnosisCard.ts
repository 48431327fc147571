// The first thing the report shows: how much the primary metric dropped (with its interval and what
// that interval means), which layers cause it and why, which layers only suffer from it, and the
// measured fix with one button to apply it. The numbers come from diagnosisData.ts.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { Report } from '../protocol/report';
import { atLeast, atMost } from '../protocol/budget';
import { formatWithInterval, intervalNote } from '../protocol/format';
import { changeText, damageRanking, evidenceItems, fixView, headlineDrop, type HeadlineDrop } from './diagnosisData';
import { h } from './dom';
import { dropSeverity, formatDb, type Severity } from './format';

export interface DiagnosisCardOptions {
  /** Re-analyze with the fix's configuration (VS Code only: the export has no engine). */
  onApplyFix?: () => void;
  /** Show a layer in the table and the detail. */
  onOpenLayer(node: string): void;
}

function severity(drop: HeadlineDrop, budget: number | null): Severity {
  if (drop.significant === false) return 'good';
  // a floor (SQNR): above it is good; a loss: within the budget is good, or a warning when it is real
  if (budget !== null && drop.floor) return atLeast(drop.value, budget) ? 'good' : 'bad';
  if (budget !== null) return atMost(drop.value, budget) ? (drop.significant ? 'warn' : 'good') : 'bad';
  return dropSeverity(drop.value);
}

export function diagnosisCard(report: Report, options: DiagnosisCardOptions): HTMLElement {
  const d = report.diagnosis ?? null;
  const drop = headlineDrop(report);
  const sev = severity(drop, d ? d.budget : null);
  const clean = drop.significant === false;
  // Left: the verdict and what to do about it (the fix and its one button); right: why (culprits, victims).
  return h(
    'section',
    { id: 'diagnosis', class: `diagnosis card-diagnosis sev-${sev}`, 'aria-labelledby': 'diagnosis-title', 'data-significant': String(drop.significant) },
    h(
      'div',
      { class: 'diag-left' },
      h(
        'div',
        { class: 'diag-drop', id: 'accuracy-drop', role: 'group', 'aria-label': `Drop ${formatWithInterval(drop.value, drop.interval)} ${drop.unit}` },
        h('h2', { id: 'diagnosis-title', class: 'drop-label' }, clean ? 'No significant drop' : 'Diagnosis'),
        h('div', { class: 'drop-value' }, formatWithInterval(drop.value, null), h('span', { class: 'drop-unit' }, ` ${drop.unit}`)),
        h(
          'div',
          { class: 'drop-interval', title: intervalNote(drop.interval, drop.samples) },
          drop.interval
            ? `95% interval ${formatWithInterval(drop.value, drop.interval).replace(/^[^[]*/, '')} · ${drop.samples ?? report.samples} samples`
            : `${drop.samples ?? report.samples} samples, no interval`,
        ),
        h('div', { class: 'drop-detail' }, `${drop.metric}, float → integer${d ? ` · budget ${d.budget} ${drop.unit}` : ''}`),
        h('p', { class: 'verdict', id: 'diagnosis-verdict' }, drop.verdict),
      ),
      clean ? null : fixBlock(report, options),
    ),
    h(
      'div',
      { class: 'diag-body' },
      clean ? h('p', { class: 'muted' }, 'Quantization costs nothing measurable on these samples: no layer is flagged.') : culpritsBlock(report, options),
      clean ? null : victimsBlock(report, options),
      d?.notes.length
        ? h(
            'ul',
            { class: 'diag-notes muted' },
            d.notes.map((n) => h('li', null, n)),
          )
        : null,
    ),
  );
}

function nodeButton(node: string, options: DiagnosisCardOptions): HTMLElement {
  const b = h('button', { type: 'button', class: 'link node-link', title: 'Show this layer in the table' }, node);
  b.addEventListener('click', () => options.onOpenLayer(node));
  return b;
}

function culpritsBlock(report: Report, options: DiagnosisCardOptions): HTMLElement {
  const culprits = report.diagnosis?.culprits ?? [];
  if (culprits.length > 0) {
    return h(
      'div',
      { class: 'diag-culprits' },
      h('h3', null, culprits.length === 1 ? 'Culprit' : 'Culprits', h('span', { class: 'muted' }, ' · ranked by the damage each layer does by itself')),
      h(
        'ol',
        { id: 'diagnosis-culprits' },
        culprits.slice(0, 5).map((c) =>
          h(
            'li',
            { 'data-node': c.node },
            h(
              'div',
              { class: 'culprit-head' },
              nodeButton(c.node, options),
              h('span', { class: 'muted' }, ` ${c.op}`),
              h('span', { class: 'tag tag-cause' }, c.cause),
            ),
            h('p', { class: 'cause' }, c.summary),
            h(
              'p',
              { class: 'damage muted' },
              `By itself: isolated SQNR ${formatDb(c.damage.isolatedSqnrDb)} dB`,
              c.damage.onlyThisLoss
                ? `; only this layer quantized loses ${formatWithInterval(c.damage.onlyThisLoss.estimate, c.damage.onlyThisLoss)} ${report.primaryMetric?.lossUnit ?? 'points'}`
                : '',
            ),
            h(
              'details',
              { class: 'evidence' },
              h('summary', null, `Evidence${c.otherCauses.length ? ` and ${c.otherCauses.length} more cause${c.otherCauses.length === 1 ? '' : 's'}` : ''}`),
              h(
                'ul',
                { class: 'chips evidence', 'aria-label': 'evidence' },
                evidenceItems(c).map((e) => h('li', null, e)),
              ),
              c.otherCauses.length
                ? h(
                    'ul',
                    { class: 'other-causes' },
                    c.otherCauses.map((o) => h('li', null, h('span', { class: 'tag' }, o.cause), ' ', o.summary)),
                  )
                : null,
            ),
          ),
        ),
      ),
    );
  }
  // No diagnosis in this report: still rank by own damage, without causes.
  const ranked = damageRanking(report).slice(0, 3);
  return h(
    'div',
    { class: 'diag-culprits' },
    h('h3', null, 'Most damaging layers by themselves'),
    ranked.length
      ? h(
          'ol',
          { id: 'diagnosis-culprits' },
          ranked.map((r) => h('li', { 'data-node': r.node }, nodeButton(r.node, options), h('span', { class: 'muted' }, ` · ${r.why}`))),
        )
      : h('p', { class: 'muted' }, 'No layer loses anything on its own.'),
    h('p', { class: 'muted note' }, 'This report carries no diagnosis (causes and a measured fix): it was made without one.'),
  );
}

function victimsBlock(report: Report, options: DiagnosisCardOptions): HTMLElement | null {
  const victims = report.diagnosis?.victims ?? [];
  if (victims.length === 0) return null;
  return h(
    'div',
    { class: 'diag-victims' },
    h('h3', null, 'Victims ', h('span', { class: 'muted' }, '· low accumulated SQNR inherited from upstream, not to blame')),
    h(
      'ul',
      { id: 'diagnosis-victims' },
      victims.map((v) =>
        h(
          'li',
          { 'data-node': v.node },
          nodeButton(v.node, options),
          h('span', { class: 'muted' }, ` accumulated ${formatDb(v.accumulatedSqnrDb)} dB, own (isolated) ${formatDb(v.isolatedSqnrDb)} dB`),
          v.from ? [h('span', { class: 'muted' }, ' · inherits from '), nodeButton(v.from, options)] : null,
        ),
      ),
    ),
  );
}

function fixBlock(report: Report, options: DiagnosisCardOptions): HTMLElement | null {
  const d = report.diagnosis;
  if (!d) return null;
  const fv = fixView(report);
  if (!fv) {
    return h(
      'div',
      { class: 'diag-fix none' },
      h('h3', null, 'Fix'),
      h(
        'p',
        { class: 'muted' },
        d.candidates.length ? `None of the ${d.candidates.length} measured candidates meets the budget of ${d.budget}.` : 'No fix was found.',
      ),
    );
  }
  const { fix } = fv;
  const unit = d.drop.unit;
  const apply = options.onApplyFix
    ? h('vscode-button', { id: 'apply-fix', title: 'Re-analyze with this configuration; nothing is written until you confirm' }, 'Apply fix')
    : null;
  apply?.addEventListener('click', () => {
    apply.setAttribute('disabled', '');
    apply.setAttribute('data-pending', '');
    apply.setAttribute('data-label', 'Apply fix');
    apply.textContent = 'Re-analyzing with the fix…';
    options.onApplyFix?.();
  });
  return h(
    'div',
    { class: `diag-fix ${fv.meetsBudget ? 'meets' : 'misses'}` },
    h('h3', null, 'Verified fix ', h('span', { class: 'muted' }, '· measured, integer execution')),
    h('p', { class: 'fix-description' }, fix.description),
    fix.changes.length
      ? h(
          'details',
          { class: 'fix-changes-block' },
          h('summary', null, `${fix.changes.length} change${fix.changes.length === 1 ? '' : 's'}`),
          h(
            'ul',
            { class: 'fix-changes' },
            fix.changes.map((c) => h('li', null, changeText(c))),
          ),
        )
      : null,
    h(
      'div',
      { class: 'before-after', id: 'fix-before-after' },
      h('span', { class: 'before' }, h('span', { class: 'ba-label muted' }, 'now '), `${formatWithInterval(fv.before.value, fv.before.interval)}`),
      h('span', { class: 'arrow', 'aria-hidden': 'true' }, ' → '),
      h('span', { class: 'after' }, h('span', { class: 'ba-label muted' }, 'with the fix '), `${formatWithInterval(fv.after.value, fv.after.interval)}`),
      h(
        'span',
        { class: 'muted' },
        ` ${unit} (${fix.measured.samples} samples${fix.measured.floatLayers ? `, ${fix.measured.floatLayers} layer${fix.measured.floatLayers === 1 ? '' : 's'} in float` : ''})`,
      ),
    ),
    fv.gain ? h('p', { class: 'gain' }, `Paired on the same samples, the fix wins back ${formatWithInterval(fv.gain.estimate, fv.gain)} ${unit}.`) : null,
    h('p', { class: 'muted' }, fix.measured.verdict),
    apply ? h('div', { class: 'fix-actions' }, apply, h('span', { class: 'muted' }, ' re-analyzes with the fix, then asks before writing anything')) : null,
    d.candidates.length > 1 ? candidatesBlock(report) : null,
  );
}

function candidatesBlock(report: Report): HTMLElement {
  const d = report.diagnosis!;
  return h(
    'details',
    { class: 'candidates' },
    h('summary', null, `All ${d.candidates.length} measured candidates`),
    h(
      'table',
      { class: 'mini' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', null, 'change'),
          h('th', { class: 'num' }, `drop (${d.drop.unit})`),
          h('th', { class: 'num', title: 'Samples measured: a candidate clearly worse than the plan so far stops after the first ones' }, 'samples'),
          h('th', { class: 'num' }, 'float layers'),
        ),
      ),
      h(
        'tbody',
        null,
        d.candidates.map((c) =>
          h(
            'tr',
            null,
            h('td', null, c.description),
            h('td', { class: 'num' }, formatWithInterval(c.measured.drop, c.measured.interval)),
            h('td', { class: 'num' }, String(c.measured.samples)),
            h('td', { class: 'num' }, String(c.measured.floatLayers)),
          ),
        ),
      ),
    ),
  );
}
