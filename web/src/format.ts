// Numbers and times as people read them; docker's conventions where docker shows the same thing.

/** Sizes in SI units, as docker prints them: 2.81 MB, 512 kB, 940 B. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '—';
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${units[unit]}`;
}

/** Exact bytes with thousands separators, for titles. */
export function exactBytes(bytes: number): string {
  return `${bytes.toLocaleString('en')} bytes`;
}

const SPANS: Array<[number, string]> = [
  [365 * 24 * 3600, 'year'],
  [30 * 24 * 3600, 'month'],
  [7 * 24 * 3600, 'week'],
  [24 * 3600, 'day'],
  [3600, 'hour'],
  [60, 'minute'],
];

/** "3 days ago", as docker history and docker images say it. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (Number.isNaN(seconds)) return '—';
  if (seconds < 60) return seconds < 0 ? 'in the future' : 'just now';
  for (const [span, name] of SPANS) {
    if (seconds >= span) {
      const count = Math.floor(seconds / span);
      return `${count} ${name}${count === 1 ? '' : 's'} ago`;
    }
  }
  return 'just now';
}

/** A digest shortened to its algorithm and first 12 hex digits, like docker's IMAGE ID. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return colon < 0 ? digest : `${digest.slice(0, colon + 1)}${digest.slice(colon + 1, colon + 13)}`;
}

export function platformName(p: { os: string | null; architecture: string | null; variant?: string | null }): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

export function percent(part: number, whole: number): string {
  if (whole <= 0) return '0%';
  return `${((100 * part) / whole).toFixed(part === whole || part === 0 ? 0 : 1)}%`;
}
