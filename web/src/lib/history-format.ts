/** Date and duration formatting for the detail, My work and Trends views (Intl, by locale). */

const cache = new Map<string, Intl.DateTimeFormat>();
function dtf(locale: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${locale}|${JSON.stringify(options)}`;
  let f = cache.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, options);
    cache.set(key, f);
  }
  return f;
}

/** `May 3, 14:05` / `5월 3일 14:05`. */
export function formatDateTime(locale: string, time: number): string {
  return dtf(locale, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(time);
}

/** `May 3` / `5월 3일`. */
export function formatDay(locale: string, time: number): string {
  return dtf(locale, { month: 'short', day: 'numeric' }).format(time);
}

/** `May 3, 2026` / `2026년 5월 3일`. */
export function formatDate(locale: string, time: number): string {
  return dtf(locale, { year: 'numeric', month: 'short', day: 'numeric' }).format(time);
}

const numCache = new Map<string, Intl.NumberFormat>();
/** An amount with as many digits as it needs: `0`, `0.042`, `3.5`, `1,234`. */
export function formatAmount(locale: string, value: number): string {
  const a = Math.abs(value);
  const options: Intl.NumberFormatOptions =
    a === 0
      ? { maximumFractionDigits: 0 }
      : a < 1
        ? { maximumSignificantDigits: 2 }
        : a < 10
          ? { maximumFractionDigits: 1 }
          : { maximumFractionDigits: 0 };
  const key = `${locale}|${JSON.stringify(options)}`;
  let f = numCache.get(key);
  if (!f) {
    f = new Intl.NumberFormat(locale, options);
    numCache.set(key, f);
  }
  return f.format(value);
}
