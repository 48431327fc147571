// Preloaded (--require) into each CLI run by the fuzz runner: records the process's peak resident
// memory when it exits, exactly (the runner's /proc polling alone can miss a short final peak).
'use strict';
const file = process.env.QUANTLENS_FUZZ_RSS_FILE;
if (file) {
  process.on('exit', () => {
    try {
      require('node:fs').writeFileSync(file, String(process.resourceUsage().maxRSS * 1024));
    } catch {
      /* the runner falls back to what it polled */
    }
  });
}
