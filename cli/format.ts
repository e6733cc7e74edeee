// Plain-text output helpers: aligned tables, sizes, ages and rates.

/** Renders rows as left-aligned columns separated by two spaces; the first row is the header. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** An age such as "0.4s", "12s", "3m", "5h" from a unix-ms timestamp; "-" when there is none. */
export function formatAge(unixMs: number, nowMs: number = Date.now()): string {
  if (!unixMs) return '-';
  const ms = Math.max(0, nowMs - unixMs);
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.round(ms / 3_600_000)}h`;
}

/** A count with thousands separators: 1,234,567. */
export function formatCount(n: number | string): string {
  return Number(n).toLocaleString('en-US');
}

export function formatRate(perSecond: number): string {
  return `${formatCount(Math.round(perSecond))}/s`;
}

/** Key-group ranges as "0-63,96-127"; a range of one as "5". */
export function formatRanges(ranges: readonly { start: number; end: number }[]): string {
  return ranges.map((r) => (r.start === r.end ? `${r.start}` : `${r.start}-${r.end}`)).join(',');
}
