// Canvas drawing cannot use CSS variables, so chart colours are read from the computed style.
// style.css defines --ql-* with VS Code's theme variables first and fallbacks for the standalone
// export, so reading --ql-* covers both.
import type { CalibrationMethod } from '../protocol/report';

export interface Theme {
  foreground: string;
  muted: string;
  grid: string;
  background: string;
  fontFamily: string;
  fontSize: number;
  red: string;
  orange: string;
  yellow: string;
  green: string;
  blue: string;
  purple: string;
  focus: string;
}

function read(style: CSSStyleDeclaration, name: string, fallback: string): string {
  const v = style.getPropertyValue(name).trim();
  return v || fallback;
}

export function readTheme(): Theme {
  const style = getComputedStyle(document.body);
  const size = parseFloat(read(style, 'font-size', '13'));
  return {
    foreground: read(style, '--ql-fg', '#cccccc'),
    muted: read(style, '--ql-muted', '#9d9d9d'),
    grid: read(style, '--ql-grid', 'rgba(128,128,128,0.25)'),
    background: read(style, '--ql-bg', '#1e1e1e'),
    fontFamily: read(style, 'font-family', 'sans-serif'),
    fontSize: Number.isFinite(size) ? Math.max(10, Math.min(size, 14)) : 12,
    red: read(style, '--ql-red', '#f14c4c'),
    orange: read(style, '--ql-orange', '#d18616'),
    yellow: read(style, '--ql-yellow', '#cca700'),
    green: read(style, '--ql-green', '#89d185'),
    blue: read(style, '--ql-blue', '#3794ff'),
    purple: read(style, '--ql-purple', '#b180d7'),
    focus: read(style, '--ql-focus', '#007fd4'),
  };
}

/** One fixed colour per calibration method, so a method looks the same in every chart and legend. */
export function methodColor(theme: Theme, method: CalibrationMethod): string {
  switch (method) {
    case 'minmax':
      return theme.red;
    case 'ema':
      return theme.yellow;
    case 'percentile':
      return theme.blue;
    case 'entropy':
      return theme.purple;
    case 'mse':
      return theme.green;
  }
}

/** Colour with alpha for fills; accepts the #rgb/#rrggbb/rgb() forms themes use. */
export function withAlpha(color: string, alpha: number): string {
  const c = color.trim();
  const hex = /^#([0-9a-f]{3,8})$/i.exec(c);
  if (hex) {
    let s = hex[1];
    if (s.length === 3 || s.length === 4)
      s = s
        .split('')
        .map((ch) => ch + ch)
        .join('');
    const r = parseInt(s.slice(0, 2), 16);
    const g = parseInt(s.slice(2, 4), 16);
    const b = parseInt(s.slice(4, 6), 16);
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  const rgb = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/i.exec(c);
  if (rgb) return `rgba(${rgb[1]}, ${rgb[2]}, ${rgb[3]}, ${alpha})`;
  return c;
}
