/**
 * How a figure is held to its budget wherever it is judged: the engine's verdicts and plan search,
 * and the webview's badges and charts. Pure; no DOM, no Node.
 *
 * Budgets are decimals a user typed; the figures compared with them are computed in binary floating
 * point (193/200 - 192/200 is 0.0050000000000000044). Within this much of the budget a figure counts
 * as equal to it, so a drop of exactly one sample in 200 meets a budget of 0.5 points.
 */
const BUDGET_EPS = 1e-9;

/** The noise allowed around `budget`. */
export function budgetNoise(budget: number): number {
  return BUDGET_EPS * Math.max(1, Math.abs(budget));
}

/** x <= budget, up to floating-point noise. */
export function atMost(x: number, budget: number): boolean {
  return x <= budget + budgetNoise(budget);
}

/** x >= floor, up to floating-point noise. */
export function atLeast(x: number, floor: number): boolean {
  return x >= floor - budgetNoise(floor);
}
