#!/usr/bin/env node
// The `quantlens` command: runs the bundled CLI (npm run build creates out/cli.js). It exits once
// stdout and stderr have drained: a piped --json report is longer than one pipe buffer, and an
// immediate process.exit() would cut it at 64 KiB.
require('../out/cli.js')
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  });
