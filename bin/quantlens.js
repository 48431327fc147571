#!/usr/bin/env node
// The `quantlens` command: runs the bundled CLI (npm run build creates out/cli.js).
const cli = require('../out/cli.js');
cli.main(process.argv).then(cli.exitWhenFlushed);
