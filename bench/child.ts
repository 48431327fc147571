/**
 * How the bench starts a fresh process running its own file: `npm run bench` runs the bundle
 * (out/bench.js, built like the CLI), a single module run directly (`node --import tsx
 * bench/dataMemory.ts`) runs from the sources through tsx.
 */
export function selfArgs(file: string): string[] {
  return ['--expose-gc', ...(file.endsWith('.ts') ? ['--import', 'tsx'] : []), file];
}
