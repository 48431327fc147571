// Preloaded (--require) into each CLI run by the fuzz runner: records the process's peak resident
// memory when it exits, exactly (the runner's /proc polling alone can miss a short final peak).
'use strict';
const file = process.env.QUANTLENS_FUZZ_RSS_FILE;
if (file) {
  process.on('exit', () => {
    try {
      // VmHWM, not resourceUsage().maxRSS: Linux carries maxrss across exec, so the latter would
      // include the fuzz runner's own peak.
      const fs = require('node:fs');
      const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
      fs.writeFileSync(file, String(m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024));
    } catch {
      /* the runner falls back to what it polled */
    }
  });
}
