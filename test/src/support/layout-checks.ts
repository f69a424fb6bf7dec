import type { Page } from 'playwright-core';

/** A text element whose content is wider than its box (clipped, cut or spilling out). */
export interface Overflow {
  tag: string;
  text: string;
  scrollWidth: number;
  clientWidth: number;
  path: string;
}

/**
 * Every visible element with text of its own whose `scrollWidth > clientWidth + 1`: text that is
 * clipped, ellipsized or spills out of its box. Inline elements (no box of their own) are
 * measured through their block ancestor; `.visually-hidden` text is for screen readers only.
 */
export function textOverflows(page: Page): Promise<Overflow[]> {
  return page.evaluate(() => {
    const out: Overflow[] = [];
    const pathOf = (el: Element): string => {
      const parts: string[] = [];
      for (let e: Element | null = el; e && e !== document.body && parts.length < 5; e = e.parentElement) {
        const id = e.getAttribute('data-testid');
        parts.unshift(
          id
            ? `${e.tagName.toLowerCase()}[${id}]`
            : `${e.tagName.toLowerCase()}${e.className && typeof e.className === 'string' ? `.${e.className.split(' ')[0]}` : ''}`,
        );
      }
      return parts.join(' > ');
    };
    for (const el of document.querySelectorAll<HTMLElement>('body *')) {
      const own = [...el.childNodes].some(
        (n) => n.nodeType === Node.TEXT_NODE && (n.textContent ?? '').trim() !== '',
      );
      if (!own) continue;
      if (el.closest('.visually-hidden, [hidden], option, script, style')) continue;
      const cs = getComputedStyle(el);
      if (cs.display === 'inline' || cs.display === 'none' || cs.visibility === 'hidden') continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      // A scroll container shows what does not fit by scrolling (e.g. a wide table's wrapper).
      if (cs.overflowX === 'auto' || cs.overflowX === 'scroll') continue;
      if (el.scrollWidth > el.clientWidth + 1)
        out.push({
          tag: el.tagName.toLowerCase(),
          text: (el.textContent ?? '').trim().slice(0, 60),
          scrollWidth: el.scrollWidth,
          clientWidth: el.clientWidth,
          path: pathOf(el),
        });
    }
    return out;
  });
}

export interface LegendReport {
  /** ECharts instances that draw a legend of their own (paged or clipped: not allowed). */
  canvasLegends: number;
  charts: number;
  /** Legend entries (page text) outside the viewport's width or with no size. */
  hiddenEntries: string[];
  entries: number;
}

/** Charts draw their legend as page text (ChartLegend.vue); every entry of it is on screen. */
export function legendReport(page: Page): Promise<LegendReport> {
  return page.evaluate(() => {
    const charts = [...document.querySelectorAll<HTMLElement>('[_echarts_instance_]')];
    const hiddenEntries: string[] = [];
    const items = [...document.querySelectorAll<HTMLElement>('[data-testid="chart-legend"] li')];
    for (const li of items) {
      const r = li.getBoundingClientRect();
      if (
        r.width === 0 ||
        r.height === 0 ||
        r.left < -1 ||
        r.right > document.documentElement.clientWidth + 1
      )
        hiddenEntries.push((li.textContent ?? '').trim());
    }
    return {
      charts: charts.length,
      canvasLegends: charts.filter((c) => c.getAttribute('data-legend') !== 'dom').length,
      hiddenEntries,
      entries: items.length,
    };
  });
}

/**
 * Whether the view needs more than its screen (a kiosk view must fit): the page scrolls, or a
 * screen-high container (the kiosk's `#app` / `main`, `overflow: hidden`) cuts its content off.
 */
export function pageScrolls(page: Page): Promise<{ x: boolean; y: boolean; height: number }> {
  return page.evaluate(() => {
    const d = document.documentElement;
    let x = d.scrollWidth > window.innerWidth + 1;
    let y = d.scrollHeight > window.innerHeight + 1;
    let height = d.scrollHeight;
    for (const el of [document.getElementById('app'), document.querySelector('main')]) {
      if (!el) continue;
      if (el.scrollWidth > el.clientWidth + 1) x = true;
      if (el.scrollHeight > el.clientHeight + 1) {
        y = true;
        height = Math.max(height, el.scrollHeight);
      }
    }
    return { x, y, height };
  });
}

/**
 * The font sizes each chart on the page draws its axis labels and axis names with, as ECharts
 * holds them (the instance is a property of its element: web/src/composables/use-echarts.ts).
 */
export function chartFontSizes(page: Page): Promise<{ chart: string; what: string; px: number }[]> {
  return page.evaluate(() => {
    type Axis = { axisLabel?: { fontSize?: number }; nameTextStyle?: { fontSize?: number }; name?: string };
    type Chart = { getOption(): { xAxis?: Axis[]; yAxis?: Axis[] } };
    const out: { chart: string; what: string; px: number }[] = [];
    for (const el of document.querySelectorAll<HTMLElement>('[_echarts_instance_]')) {
      const chart = (el as unknown as { __gpupulseChart?: Chart }).__gpupulseChart;
      if (!chart) continue;
      const name = el.closest('[data-chart]')?.getAttribute('data-chart') ?? el.className;
      const o = chart.getOption();
      for (const [kind, axes] of [
        ['x', o.xAxis ?? []],
        ['y', o.yAxis ?? []],
      ] as const)
        for (const a of axes) {
          out.push({ chart: name, what: `${kind} axis labels`, px: a.axisLabel?.fontSize ?? 12 });
          if (a.name)
            out.push({ chart: name, what: `${kind} axis name`, px: a.nameTextStyle?.fontSize ?? 12 });
        }
    }
    return out;
  });
}

/** Noto Sans KR faces the page loaded (the self-hosted Korean webfont). */
export function koreanFontLoaded(page: Page): Promise<boolean> {
  return page.evaluate(async () => {
    await document.fonts.ready;
    return [...document.fonts].some(
      (f) => f.family.replace(/["']/g, '') === 'Noto Sans KR' && f.status === 'loaded',
    );
  });
}
