// One colour per worker, the same on every page: by the worker's place among all worker ids seen.
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#86bcb6', '#d37295', '#a0cbe8'];

const known: string[] = [];

export function workerColor(workerId: string): string {
  if (!workerId) return 'var(--unassigned)';
  let i = known.indexOf(workerId);
  if (i < 0) {
    known.push(workerId);
    known.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    i = known.indexOf(workerId);
  }
  return PALETTE[i % PALETTE.length]!;
}

/** Call with every worker id before colouring, so that colours follow the sorted order. */
export function learnWorkers(ids: readonly string[]): void {
  for (const id of ids) if (!known.includes(id)) known.push(id);
  known.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}
