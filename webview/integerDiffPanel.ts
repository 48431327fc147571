// The layer detail's "Simulated vs integer" section: the three code-level comparisons as cards, the
// LSB-difference chart, the root-cause glossary, the rounding-mode what-if, the x86 u8s8 check and
// accumulator overflows. The data side (labels, explanations, binning) is in integerDiff.ts.
import type { Chart } from 'chart.js';
import type { IntegerDiff } from '../protocol/report';
import { comparisonColor, lsbDiffChart } from './charts';
import { h } from './dom';
import { formatCount, formatFixed } from './format';
import { causeInfo, causesInUse, COMPARISONS, diffSeverity, formatRate, mismatchCount, roundingOptions, sortedCauses, type Comparison } from './integerDiff';
import type { Theme } from './theme';

export type ChartBox = (id: string, label: string, create: (canvas: HTMLCanvasElement) => Chart) => HTMLElement;

export interface IntegerDiffContext {
  /** The target CPU can saturate u8 x s8 pair sums (protocol/platform.ts u8s8Hazard). */
  u8s8Possible: boolean;
  /** Samples of the whole analysis: the diff sees only its first `diff.samples`, and says so. */
  totalSamples: number;
  /** Share of the output positions of those samples compared (below 1 on large models). */
  share: number;
}

export function integerDiffPanel(diff: IntegerDiff, node: string, theme: Theme, chartBox: ChartBox, context: IntegerDiffContext): HTMLElement {
  const total = diff.elements;
  const whole = diff.samples < context.totalSamples ? `the first ${diff.samples} of ${context.totalSamples} samples` : `all ${diff.samples} samples`;
  const samples = context.share < 1 ? `a random ${formatRate(context.share)} of the output positions of ${whole}` : whole;
  return h(
    'section',
    { id: 'int-diff', class: 'panel panel-wide panel-int-diff', 'aria-labelledby': 'int-diff-title', 'data-samples': diff.samples },
    h(
      'div',
      { class: 'int-head' },
      h('h3', { id: 'int-diff-title' }, 'Simulated vs integer'),
      h(
        'span',
        { class: 'muted int-sub' },
        `${formatCount(total)} output codes on ${samples} (the bit-exact reference is bounded), compared element by element, differences in LSB of the output scale. The table's Sim≠int covers all samples.`,
      ),
    ),
    // Wrapped sums are the one finding here that is never rounding noise: first, before the cards.
    overflowLine(diff),
    h(
      'div',
      { class: 'int-cards' },
      COMPARISONS.map((c) => comparisonCard(c, diff, theme)),
    ),
    h(
      'div',
      { class: 'int-body' },
      h(
        'div',
        { class: 'int-chart' },
        chartBox('lsb-chart', chartLabel(diff, node), (canvas) => lsbDiffChart(canvas, diff, theme)),
        h('p', { class: 'caption muted' }, '“exact” is the 0 bin (codes that agree); the end bars hold every difference of 8 LSB or more. Log scale.'),
      ),
      h('div', { class: 'int-facts' }, glossary(diff), roundingBlock(diff), u8s8Block(diff, context.u8s8Possible)),
    ),
  );
}

function chartLabel(diff: IntegerDiff, node: string): string {
  const parts = COMPARISONS.map((c) => {
    const s = diff[c.key];
    return `${c.short}: ${formatCount(mismatchCount(s, diff.elements))} differing codes, max ${formatFixed(s.maxLsb, 0)} LSB`;
  });
  return `Histogram of code differences in LSB for ${node}. ${parts.join('; ')}.`;
}

function comparisonCard(c: Comparison, diff: IntegerDiff, theme: Theme): HTMLElement {
  const s = diff[c.key];
  const severity = diffSeverity(s);
  const differ = mismatchCount(s, diff.elements);
  const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
  swatch.style.backgroundColor = comparisonColor(theme, c.key);
  const titleId = `int-card-${c.key}`;
  const causes = sortedCauses(s);
  return h(
    'div',
    { class: `int-card sev-${severity}`, role: 'group', 'aria-labelledby': titleId, 'data-comparison': c.key },
    h('h4', { id: titleId }, swatch, c.title),
    h('p', { class: 'int-desc muted' }, c.description),
    h(
      'div',
      { class: 'int-rate' },
      h('span', { class: 'int-rate-value' }, formatRate(s.mismatchRate)),
      h('span', { class: 'int-rate-unit muted' }, ' of codes differ'),
    ),
    h(
      'div',
      { class: 'int-counts muted' },
      `${formatCount(differ)} of ${formatCount(diff.elements)} codes · max |diff| `,
      h('strong', { class: s.maxLsb > 1 ? 'bad' : null }, `${formatFixed(s.maxLsb, 0)} LSB`),
    ),
    causes.length > 0
      ? h(
          'ul',
          { class: 'cause-chips', 'aria-label': 'root causes' },
          causes.map(({ cause, count }) => {
            const info = causeInfo(cause);
            return h(
              'li',
              { class: `cause-chip kind-${info.kind}`, title: info.explanation, 'data-cause': cause },
              info.label,
              h('span', { class: 'chip-count' }, formatCount(count)),
            );
          }),
        )
      : h('p', { class: 'int-none muted' }, differ > 0 ? 'No root cause recorded.' : 'All codes match.'),
  );
}

function glossary(diff: IntegerDiff): HTMLElement | null {
  const causes = causesInUse(diff);
  if (causes.length === 0) return null;
  return h(
    'div',
    { class: 'int-block' },
    h('h4', null, 'Why codes differ'),
    h(
      'dl',
      { class: 'cause-glossary' },
      causes.map((cause) => {
        const info = causeInfo(cause);
        return [h('dt', null, h('span', { class: `cause-chip kind-${info.kind}` }, info.label)), h('dd', null, info.explanation)];
      }),
    ),
  );
}

function roundingBlock(diff: IntegerDiff): HTMLElement {
  const options = roundingOptions(diff);
  const best = options.filter((o) => o.best);
  const distinct = best.length > 0 && best.length < options.length;
  return h(
    'div',
    { class: 'int-block', id: 'int-rounding' },
    h('h4', null, 'Rounding mode'),
    h(
      'table',
      { class: 'mini rounding-modes' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col' }, 'if the simulation rounded'),
          options.map((o) => h('th', { scope: 'col', class: 'num' }, o.label)),
        ),
      ),
      h(
        'tbody',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'row' }, 'codes differing from onnxruntime'),
          options.map((o) =>
            h(
              'td',
              { class: `num${o.best && distinct ? ' good' : ''}`, 'data-mode': o.key },
              o.best && distinct ? h('span', { class: 'sr-note' }, 'closest: ') : null,
              formatRate(o.rate),
            ),
          ),
        ),
      ),
    ),
    h(
      'p',
      { class: 'caption muted' },
      `Half-to-even is the ONNX rule.${distinct ? ` Closest to onnxruntime: ${best.map((o) => o.label).join(' and ')}.` : ''}`,
    ),
  );
}

function u8s8Block(diff: IntegerDiff, possible: boolean): HTMLElement {
  const u = diff.u8s8;
  const block = h('div', { class: 'int-block', id: 'int-u8s8' }, h('h4', null, 'x86 u8s8 kernels'));
  if (!u.applicable) {
    block.append(h('p', { class: 'int-line muted' }, 'Not applicable (needs u8 activations × s8 weights).'));
    return block;
  }
  if (!possible) {
    // The emulation still ran; on this target it cannot happen, so it is a footnote, not a warning.
    block.append(
      h(
        'p',
        { class: 'int-line muted' },
        `Cannot happen on the target CPU (VNNI, or not x86: pair sums are not saturated in int16). On an x86 CPU without VNNI, ${formatCount(u.changedOutputs)} output code${u.changedOutputs === 1 ? '' : 's'} would change; set quantlens.targetCpu to "no-vnni" to judge that target.`,
      ),
    );
    return block;
  }
  const changed = u.changedOutputs > 0;
  const pairs =
    u.saturatedPairs > 0
      ? `${formatCount(u.saturatedPairs)} pair sum${u.saturatedPairs === 1 ? '' : 's'} would saturate int16`
      : 'no pair sum would saturate int16';
  const outputs = changed
    ? [
        h('strong', null, `${formatCount(u.changedOutputs)} output code${u.changedOutputs === 1 ? '' : 's'}`),
        ` would change${u.elements > 0 ? ` (${formatRate(u.changedOutputs / u.elements)} of ${formatCount(u.elements)})` : ''}.`,
      ]
    : [u.saturatedPairs > 0 ? 'no output code would change.' : 'outputs are unaffected.'];
  block.append(
    h('p', { class: changed ? 'int-line banner compact' : 'int-line' }, changed ? h('strong', null, '⚠ ') : null, `On x86 without VNNI, ${pairs}; `, outputs),
  );
  return block;
}

function overflowLine(diff: IntegerDiff): HTMLElement | null {
  const n = diff.accumulatorOverflows;
  if (!(n > 0)) return null;
  return h(
    'p',
    { id: 'int-overflow', class: 'int-line banner banner-error compact' },
    h('strong', null, `⊘ ${formatCount(n)} accumulator overflow${n === 1 ? '' : 's'}: `),
    'the int32 sum of products wrapped around, so those outputs are wrong by far more than rounding.',
  );
}
