// `npm run demo`: the bundled demo, end to end.
//   1. analyzes examples/mnist-cnn with the CLI (prints the summary, writes out/demo-report.json);
//   2. packages the extension, installs it into a private code-server profile (.e2e/demo) and
//      opens a real VS Code on the examples/ workspace at http://127.0.0.1:PORT, ready to
//      right-click mnist-cnn/model.onnx -> Analyze Quantization. Ctrl-C stops it.
// With CI=true (or --check) step 2 only checks that VS Code serves with QuantLens installed, then exits.
import { execFileSync, execSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const check = process.env.CI === 'true' || process.argv.includes('--check');
const port = Number(process.env.QUANTLENS_DEMO_PORT ?? 8737);
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });

run('npm run build');
console.log('\n== QuantLens CLI on the bundled demo (examples/mnist-cnn, 300 labelled samples)\n');
run('node bin/quantlens.js analyze examples/mnist-cnn/model.onnx --data examples/mnist-cnn/data --calibration percentile --report out/demo-report.json');

console.log('\n== Opening QuantLens in a real VS Code (code-server)\n');
run('bash scripts/install-e2e.sh');
run('npm run package');
const profile = path.join(root, '.e2e/demo');
const env = { ...process.env, EXTENSIONS_GALLERY: '{}', XDG_CONFIG_HOME: `${profile}/xc`, XDG_DATA_HOME: `${profile}/xd`, XDG_CACHE_HOME: `${profile}/xcache` };
const codeServer = path.join(root, '.e2e/code-server/node_modules/.bin/code-server');
const dirs = ['--user-data-dir', `${profile}/ud`, '--extensions-dir', `${profile}/ext`];
execFileSync(codeServer, [...dirs, '--force', '--install-extension', path.join(root, 'out/quantlens-linux-x64.vsix')], { env, stdio: 'inherit' });
const settings = path.join(profile, 'ud/User/settings.json');
if (!fs.existsSync(settings)) {
  fs.mkdirSync(path.dirname(settings), { recursive: true });
  fs.writeFileSync(
    settings,
    JSON.stringify({ 'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false, 'telemetry.telemetryLevel': 'off' }, null, 2),
  );
}
const server = spawn(
  codeServer,
  [
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    ...dirs,
    path.join(root, 'examples'),
  ],
  { env, stdio: check ? 'ignore' : 'inherit' },
);
const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(path.join(root, 'examples'))}`;

async function healthy() {
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`http://127.0.0.1:${port}/healthz`)
        .then((r) => r.ok)
        .catch(() => false)
    )
      return true;
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

if (!(await healthy())) {
  server.kill();
  console.error(`code-server did not come up on 127.0.0.1:${port}`);
  process.exit(1);
}
const installed = fs.readdirSync(`${profile}/ext`).filter((d) => d.startsWith('quantlens.quantlens-'));
console.log(`\nQuantLens ${installed.join(', ')} is installed. Open:\n\n    ${url}\n\nthen right-click mnist-cnn/model.onnx -> Analyze Quantization.`);
if (check) {
  server.kill();
  console.log('(CI / --check: VS Code answered on 127.0.0.1 with QuantLens installed; stopped it.)');
} else {
  console.log('Ctrl-C stops it.');
  const stop = () => {
    server.kill();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
