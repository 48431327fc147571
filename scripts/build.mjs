// Bundles every entry point with esbuild. Type checking is a separate step (`npm run typecheck`),
// because esbuild strips types without checking them.
import * as fs from 'node:fs';
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

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
];

// The webview's stylesheet is loaded through a <link> (the CSP allows no inline styles).
fs.mkdirSync('out', { recursive: true });
fs.copyFileSync('webview/style.css', 'out/webview.css');

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
