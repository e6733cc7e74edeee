// Numbers, sizes, durations and times as the dashboard shows them.

export function count(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(1)} G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (abs >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
  return String(Math.round(n));
}

export function rate(perSecond: number): string {
  return `${count(perSecond)}/s`;
}

export function bytes(n: number): string {
  if (!(n > 0)) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  const i = Math.min(units.length - 1, Math.floor(Math.log2(n) / 10));
  const v = n / 2 ** (10 * i);
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function time(unixMs: number): string {
  if (!unixMs) return '–';
  const d = new Date(unixMs);
  return d.toLocaleTimeString(undefined, { hour12: false });
}

export function dateTime(unixMs: number): string {
  if (!unixMs) return '–';
  return new Date(unixMs).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function percent(ratio: number): string {
  return `${Math.round(ratio * 100)}%`;
}
