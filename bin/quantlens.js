#!/usr/bin/env node
// The `quantlens` command: runs the bundled CLI (npm run build creates out/cli.js).
require('../out/cli.js').main(process.argv).then((code) => process.exit(code));
