/** Locale-aware formatting with Intl. Every function takes the locale; null/undefined renders as an em dash. */

export const MISSING = '—';

const cache = new Map<string, Intl.NumberFormat>();
function numberFormat(locale: string, options: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = `${locale}|${JSON.stringify(options)}`;
  let f = cache.get(key);
  if (!f) {
    f = new Intl.NumberFormat(locale, options);
    cache.set(key, f);
  }
  return f;
}

type Num = number | null | undefined;

/** `53%` from 53 (percent, not a fraction). */
export function formatPercent(locale: string, value: Num, fractionDigits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return MISSING;
  return numberFormat(locale, {
    style: 'percent',
    maximumFractionDigits: fractionDigits,
    minimumFractionDigits: fractionDigits,
  }).format(value / 100);
}

export function formatNumber(locale: string, value: Num, fractionDigits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return MISSING;
  return numberFormat(locale, {
    maximumFractionDigits: fractionDigits,
    minimumFractionDigits: fractionDigits,
  }).format(value);
}

export function formatCelsius(locale: string, value: Num): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return MISSING;
  return numberFormat(locale, { style: 'unit', unit: 'celsius', maximumFractionDigits: 0 }).format(value);
}

export function formatWatts(locale: string, value: Num): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return MISSING;
  return `${formatNumber(locale, value, 0)} W`;
}

export function formatKilowatts(locale: string, value: Num): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return MISSING;
  return `${formatNumber(locale, value, value < 10 ? 2 : 1)} kW`;
}

/** `12.3 / 80.0 GiB` from MiB values. */
export function formatMemoryMiB(locale: string, used: Num, total: Num): string {
  const gib = (v: Num) =>
    v === null || v === undefined || !Number.isFinite(v) ? MISSING : formatNumber(locale, v / 1024, 1);
  return `${gib(used)} / ${gib(total)} GiB`;
}

const rtfCache = new Map<string, Intl.RelativeTimeFormat>();

/**
 * "5 seconds ago" / "5초 전" for an age in milliseconds (0 → "now" / "지금").
 * Seconds below a minute, then minutes, hours, days.
 */
export function formatAgo(locale: string, ageMs: number): string {
  let rtf = rtfCache.get(locale);
  if (!rtf) {
    rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto', style: 'long' });
    rtfCache.set(locale, rtf);
  }
  const s = Math.max(0, Math.floor(ageMs / 1000));
  if (s < 60) return rtf.format(-s, 'second');
  if (s < 3600) return rtf.format(-Math.floor(s / 60), 'minute');
  if (s < 86_400) return rtf.format(-Math.floor(s / 3600), 'hour');
  return rtf.format(-Math.floor(s / 86_400), 'day');
}

/** Escapes text for the places that take HTML (ECharts tooltips). */
export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** `2 h 5 min` / `2시간 5분` for a duration in ms (seconds below a minute, minutes below an hour). */
export function formatDuration(locale: string, ms: number): string {
  const unit = (u: 'second' | 'minute' | 'hour' | 'day', v: number) =>
    numberFormat(locale, { style: 'unit', unit: u, unitDisplay: 'narrow', maximumFractionDigits: 0 }).format(
      v,
    );
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return unit('second', s);
  const m = Math.floor(s / 60);
  if (m < 60) return unit('minute', m);
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${unit('hour', h)} ${unit('minute', m % 60)}` : unit('hour', h);
  const d = Math.floor(h / 24);
  return h % 24 ? `${unit('day', d)} ${unit('hour', h % 24)}` : unit('day', d);
}

const dtfCache = new Map<string, Intl.DateTimeFormat>();
function dateTimeFormat(locale: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${locale}|${JSON.stringify(options)}`;
  let f = dtfCache.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, options);
    dtfCache.set(key, f);
  }
  return f;
}

/** Wall clock: `14:05:09` / `오후 2:05:09`. */
export function formatClock(locale: string, time: number, seconds = true): string {
  return dateTimeFormat(locale, {
    hour: '2-digit',
    minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {}),
  }).format(time);
}

/** Date and time, short: `Mar 4, 14:05` / `3월 4일 오후 2:05`. */
export function formatDateTime(locale: string, time: number): string {
  return dateTimeFormat(locale, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  }).format(time);
}

/** Long date for the kiosk clock line: `Tuesday, March 4` / `3월 4일 화요일`. */
export function formatLongDate(locale: string, time: number): string {
  return dateTimeFormat(locale, { weekday: 'long', month: 'long', day: 'numeric' }).format(time);
}

/** GiB from MiB, one decimal. */
export function formatGiB(locale: string, mib: number | null | undefined): string {
  if (mib === null || mib === undefined || !Number.isFinite(mib)) return MISSING;
  return `${formatNumber(locale, mib / 1024, mib >= 10 * 1024 ? 0 : 1)} GiB`;
}
