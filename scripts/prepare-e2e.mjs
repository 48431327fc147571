// Before `npm test`: install the end-to-end tools (Debian chromium, code-server) and package the
// VSIX the e2e suite installs. Skipped, loudly, only when QUANTLENS_SKIP_E2E=1.
import { execSync } from 'node:child_process';

if (process.env.QUANTLENS_SKIP_E2E === '1') {
  console.log('\n!!!!!!!! QUANTLENS_SKIP_E2E=1: NOT preparing or running the end-to-end tests in a real VS Code !!!!!!!!\n');
} else {
  execSync('bash scripts/install-e2e.sh', { stdio: 'inherit' });
  execSync('npm run package', { stdio: 'inherit' });
}
