// Bundles every entry point with esbuild. Type checking is a separate step (`npm run typecheck`),
// because esbuild strips types without checking them.
import * as fs from 'node:fs';
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');
// `npm run bench` measures the engine as it ships: bundled like the CLI and the server, not run
// from the sources through tsx (whose transform made some hot loops several times slower).
const bench = process.argv.includes('--bench');

const node = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: !production,
  minify: production,
  // Native addon: shipped beside the bundle, loaded at run time. `vscode` is provided by the host.
  external: ['onnxruntime-node', 'vscode'],
  logLevel: 'warning',
};

const builds = [
  {
    ...node,
    entryPoints: {
      cli: 'engine/cli.ts',
      server: 'engine/server.ts',
      extension: 'extension/extension.ts',
      // calibration statistics on every core (engine/calibration/statsPool.ts)
      histogramWorker: 'engine/calibration/histogramWorker.ts',
    },
    outdir: 'out',
  },
  {
    entryPoints: { webview: 'webview/main.ts' },
    outdir: 'out',
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    sourcemap: !production,
    minify: production,
    logLevel: 'warning',
  },
  // the bench, bundled as the engine ships; its test-data renderer's native canvas and fonts stay in
  // node_modules
  ...(bench ? [{ ...node, entryPoints: { bench: 'bench/bench.ts' }, outdir: 'out', external: [...node.external, '@napi-rs/canvas', 'dejavu-fonts-ttf'] }] : []),
];

// The webview's stylesheet is loaded through a <link> (the CSP allows no inline styles).
fs.mkdirSync('out', { recursive: true });
fs.copyFileSync('webview/style.css', 'out/webview.css');

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
