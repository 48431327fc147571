/**
 * onnxruntime's error messages, reduced to one line that keeps its own words. Its messages carry
 * boilerplate ("[ONNXRuntimeError] : 10 : INVALID_GRAPH : Load model from ... failed:This is an
 * invalid model."), C++ source locations and function signatures, and for node errors a dump of
 * the node's signature; what is left is the reason, prefixed with the node when onnxruntime names
 * one ("node sm (Softmax): [ShapeInferenceError] 'axis' must be in [-2 , 1] ...").
 */
import { InputError } from '../errors';

/** Longest detail kept: some onnxruntime messages run to paragraphs. */
const MAX_DETAIL = 400;

const BOILERPLATE: RegExp[] = [
  /^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*[A-Z_]+\s*:\s*/,
  /^Load model from .*? failed:\s*/,
  /^Exception during initialization:\s*/,
  /^This is an invalid model\.\s*/,
  /^Invalid model\.\s*/,
  /^Error:?\s+/,
];

/** "file.cc:123 " then either a C++ signature "ns::f(args) [const] " or a bare function name. */
function dropSourceLocation(s: string): string {
  const loc = /^\S+\.(?:cc|cpp|h|hpp):\d+\s+/.exec(s);
  if (!loc) return s;
  const rest = s.slice(loc[0].length);
  const paren = rest.indexOf('(');
  const head = paren > 0 ? rest.slice(0, paren) : '';
  if (head.includes('::') && /^[\w:~<>*&, ]+$/.test(head)) {
    let depth = 0;
    for (let i = paren; i < rest.length; i++) {
      if (rest[i] === '(') depth++;
      else if (rest[i] === ')' && --depth === 0)
        return rest
          .slice(i + 1)
          .replace(/^\s*const\b/, '')
          .trimStart();
    }
    return rest;
  }
  return rest.replace(/^[A-Za-z_]\w*\s+/, '');
}

function stripPrefixes(s: string): string {
  for (let changed = true; changed; ) {
    changed = false;
    for (const re of [...BOILERPLATE]) {
      const next = s.replace(re, '');
      if (next !== s) [s, changed] = [next, true];
    }
    const next = dropSourceLocation(s);
    if (next !== s) [s, changed] = [next, true];
  }
  return s;
}

/** Node errors, in the shapes onnxruntime words them: [pattern, (match) => [node, op, reason]]. */
const NODE_FORMS: [RegExp, (m: RegExpExecArray) => [string, string, string]][] = [
  // In Node, ("n1", Foo, "", -1) : ("x": tensor(float),) -> ("y": tensor(float),) , Error No Op registered ...
  [/^In Node, \("([^"]*)", ([\w.]+), "[^"]*", -?\d+\) : .*? , Error (.*)$/, (m) => [m[1], m[2], m[3]]],
  // In Node:(n1), reason
  [/^In Node:\s*\(([^)]*)\),?\s*(.*)$/, (m) => [m[1], '', m[2]]],
  // Non-zero status code returned while running Reshape node. Name:'rs' Status Message: reason
  [/^Non-zero status code returned while running ([\w.]+) node\. Name:'([^']*)' Status Message:\s*(.*)$/, (m) => [m[2], m[1], m[3]]],
  // Could not find an implementation for Foo(1) node with name 'x'
  [/^(Could not find an implementation for ([\w.]+)\(\d+\)) node with name '([^']*)'(.*)$/, (m) => [m[3], m[2], `${m[1]}${m[4]}`]],
  // Node (sm) Op (Softmax) [ShapeInferenceError] reason
  [/^Node \(([^)]*)\) Op \(([\w.]+)\)\s*(.*)$/, (m) => [m[1], m[2], m[3]]],
];

/** One line of onnxruntime's own words: boilerplate, source locations and signatures removed. */
export function ortDetail(message: string): string {
  const first =
    message
      .split(/\r?\n/)
      .map((l) => l.trim())
      .find(Boolean) ?? 'unknown error';
  let s = stripPrefixes(first.replace(/\u001b\[[0-9;]*m/g, ''));
  for (const [re, parts] of NODE_FORMS) {
    const m = re.exec(s);
    if (!m) continue;
    const [node, op, reason] = parts(m);
    s = `node ${node || '(no name)'}${op ? ` (${op})` : ''}: ${stripPrefixes(reason)}`;
    break;
  }
  s = s.replace(/\s+/g, ' ').trim();
  return s.length > MAX_DETAIL ? `${s.slice(0, MAX_DETAIL - 3)}...` : s;
}

/**
 * The InputError for an onnxruntime failure on the model `label` names ("path/model.onnx",
 * "quantized model of path/model.onnx"), while loading it or while running it.
 */
export function ortInputError(e: unknown, label: string, phase: 'load' | 'run'): InputError {
  if (e instanceof InputError) return e;
  const detail = ortDetail(e instanceof Error ? e.message : String(e));
  if (phase === 'load') return new ModelLoadError(`${label}: onnxruntime cannot load it: ${detail}`, detail);
  return new InputError(`${label}: onnxruntime failed while running it: ${detail}`);
}

/**
 * onnxruntime refused to load a model: for a model QuantLens wrote (a search's candidate), a
 * candidate no user could deploy either, which a search records and passes over.
 */
export class ModelLoadError extends InputError {
  override name = 'ModelLoadError';
  constructor(
    message: string,
    /** onnxruntime's reason, one line. */
    readonly detail: string,
  ) {
    super(message);
  }
}
