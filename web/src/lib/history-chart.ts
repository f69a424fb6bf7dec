/**
 * ECharts options for the detail and Trends charts: time-series lines and stacked bars, in
 * colour-blind-safe colours (Okabe–Ito), with line dashes and bar patterns so colour is never
 * the only cue. Field data in tooltips is escaped.
 */
import type { EChartsCoreOption } from './echarts.ts';
import { formatCelsius, formatNumber, formatPercent, formatWatts } from './format.ts';
import type { Point } from './history.ts';
import { tooltipElement } from './tooltip-dom.ts';

export type ThemeName = 'dark' | 'light';

export interface ChartPalette {
  text: string;
  muted: string;
  grid: string;
  axis: string;
  background: string;
  tooltipBackground: string;
  tooltipBorder: string;
  series: readonly string[];
  busy: string;
  idle: string;
}

/** Okabe–Ito, ordered for contrast on each background (yellow only on dark). */
export const CHART_PALETTES: Record<ThemeName, ChartPalette> = {
  dark: {
    text: '#f3f5f9',
    muted: '#aab4c4',
    grid: '#262f3e',
    axis: '#344055',
    background: '#141922',
    tooltipBackground: '#1c2330',
    tooltipBorder: '#344055',
    series: ['#56B4E9', '#E69F00', '#009E73', '#F0E442', '#CC79A7', '#D55E00', '#0072B2', '#BBBBBB'],
    busy: '#56B4E9',
    idle: '#E69F00',
  },
  light: {
    text: '#0b0f17',
    muted: '#4a5568',
    grid: '#e3e8ef',
    axis: '#b8c2d0',
    background: '#ffffff',
    tooltipBackground: '#ffffff',
    tooltipBorder: '#b8c2d0',
    series: ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#8c7a00', '#555555'],
    busy: '#0072B2',
    idle: '#D55E00',
  },
};

const DASHES = ['solid', 'dashed', 'dotted'] as const;

/** Line style of the i-th series: a colour, and a dash after every full round of colours. */
export function seriesStyle(
  palette: ChartPalette,
  i: number,
): { color: string; type: (typeof DASHES)[number] } {
  const n = palette.series.length;
  return {
    color: palette.series[i % n] ?? '#888',
    type: DASHES[Math.floor(i / n) % DASHES.length] ?? 'solid',
  };
}

export interface LineSeriesInput {
  name: string;
  points: readonly Point[];
  /** Overrides the palette colour (a project's colour from the projects file). */
  color?: string;
}

/** One entry of a chart's legend, drawn as page text by `ChartLegend.vue` (never clipped or paged). */
export interface LegendEntry {
  /** Stable key (project id, metric …). */
  key: string;
  name: string;
  color: string;
  /** Line dash of the series, or a striped swatch for idle-held bars. */
  pattern?: 'solid' | 'dashed' | 'dotted' | 'striped';
  /** Full text for the tooltip (e.g. an id behind a name). */
  title?: string;
}

/** Legend entries of line series, in the colours and dashes `buildTimeSeriesOption` draws. */
export function lineLegend(series: readonly LineSeriesInput[], palette: ChartPalette): LegendEntry[] {
  return series.map((s, i) => {
    const st = seriesStyle(palette, i);
    return { key: `${i}:${s.name}`, name: s.name, color: s.color ?? st.color, pattern: st.type };
  });
}

export interface TimeSeriesOptions {
  series: readonly LineSeriesInput[];
  palette: ChartPalette;
  /** x-axis window (ms). */
  from: number;
  to: number;
  /** Formats a value for axis and tooltip. */
  format: (value: number) => string;
  /** Formats a time for the tooltip and axis. */
  formatTime: (time: number, withDate: boolean) => string;
  yMin?: number;
  yMax?: number;
  /** Tick spacing on the value axis (with yMax: round ticks in display units). */
  yInterval?: number;
  /** Accessible description (ECharts `aria.label`). */
  description?: string;
  /** Fill under a single line. */
  area?: boolean;
  /** The value axis' name with its unit (e.g. "%", "GiB"). */
  yName?: string;
  /** The part of the range before the history begins: shaded and labelled (e.g. "no data yet"). */
  noDataUntil?: number | null;
  noDataLabel?: string;
}

/** Breaks a line where samples are missing (gap > 3 steps) instead of joining across it. */
export function withGaps(points: readonly Point[], maxGapMs: number): Point[] {
  const out: Point[] = [];
  let prev = Number.NEGATIVE_INFINITY;
  for (const p of points) {
    if (p[0] - prev > maxGapMs && out.length > 0) out.push([prev + 1, null]);
    out.push(p);
    prev = p[0];
  }
  return out;
}

export function buildTimeSeriesOption(o: TimeSeriesOptions): EChartsCoreOption {
  const p = o.palette;
  const span = o.to - o.from;
  const withDate = span > 24 * 3600_000;
  return {
    animation: false,
    backgroundColor: 'transparent',
    textStyle: { color: p.text },
    grid: { left: 8, right: 16, top: o.yName ? 28 : 14, bottom: 8, containLabel: true },
    // The legend is page text below the chart (ChartLegend.vue): every entry, wrapped, never paged.
    legend: { show: false },
    tooltip: {
      trigger: 'axis',
      backgroundColor: p.tooltipBackground,
      borderColor: p.tooltipBorder,
      textStyle: { color: p.text },
      // DOM nodes, not an HTML string: no inline `style=` for the CSP to block (lib/tooltip-dom.ts).
      formatter: (params: unknown) => {
        const list = (Array.isArray(params) ? params : [params]) as {
          seriesName?: string;
          color?: unknown;
          value?: [number, number | null];
        }[];
        const t = list[0]?.value?.[0];
        return tooltipElement(
          t === undefined ? null : o.formatTime(t, true),
          list
            .filter((x) => x.value && x.value[1] !== null && x.value[1] !== undefined)
            .map((x) => ({
              color: typeof x.color === 'string' ? x.color : null,
              label: x.seriesName ?? '',
              value: o.format(x.value?.[1] as number),
            })),
        );
      },
    },
    xAxis: {
      type: 'time',
      min: o.from,
      max: o.to,
      axisLine: { lineStyle: { color: p.axis } },
      axisLabel: { color: p.muted, hideOverlap: true, formatter: (v: number) => o.formatTime(v, withDate) },
      splitLine: { show: false },
    },
    yAxis: {
      type: 'value',
      min: o.yMin,
      max: o.yMax,
      interval: o.yInterval,
      name: o.yName,
      nameTextStyle: { color: p.muted, align: 'left' },
      axisLabel: { color: p.muted, formatter: (v: number) => o.format(v) },
      splitLine: { lineStyle: { color: p.grid } },
    },
    series: o.series.map((s, i) => {
      const st = seriesStyle(p, i);
      const color = s.color ?? st.color;
      const shade =
        i === 0 && o.noDataUntil != null && o.noDataUntil > o.from
          ? {
              markArea: {
                silent: true,
                itemStyle: { color: p.axis, opacity: 0.3 },
                label: { show: true, position: 'inside', color: p.muted, fontSize: 13 },
                data: [
                  [{ xAxis: o.from, name: o.noDataLabel ?? '' }, { xAxis: Math.min(o.noDataUntil, o.to) }],
                ],
              },
            }
          : {};
      return {
        ...shade,
        type: 'line',
        name: s.name,
        // A few points (a fresh node, a short history) are drawn as dots so they show at all.
        // (and a point between two gaps: ECharts draws no line through a lone point).
        showSymbol: s.points.filter(([, v]) => v !== null).length < 30,
        symbolSize: 5,
        connectNulls: false,
        sampling: 'lttb',
        data: s.points,
        color,
        lineStyle: { width: 1.6, type: st.type, color },
        areaStyle: o.area && o.series.length === 1 ? { opacity: 0.15 } : undefined,
      };
    }),
  };
}

export interface StackedBarOptions {
  categories: readonly string[];
  /** Each series is one stack member; `idle` ones get a striped pattern. */
  series: readonly {
    name: string;
    values: readonly (number | null)[];
    colorIndex: number;
    /** Overrides the palette colour. */
    color?: string;
    idle?: boolean;
    stack?: string;
  }[];
  palette: ChartPalette;
  /** Tooltip name of an `idle` series (series of one group share a name, so the legend toggles both). */
  idleName?: (name: string) => string;
  format: (value: number) => string;
  horizontal?: boolean;
  /** The value axis' name with its unit (e.g. "GPU-hours", "kWh"). */
  valueName?: string;
}

/** Legend entries of bar series (one per name: a busy/idle pair shares its entry). */
export function barLegend(o: Pick<StackedBarOptions, 'series' | 'palette'>): LegendEntry[] {
  const seen = new Set<string>();
  const out: LegendEntry[] = [];
  for (const s of o.series) {
    if (seen.has(s.name)) continue;
    seen.add(s.name);
    out.push({
      key: s.name,
      name: s.name,
      color: s.color ?? o.palette.series[s.colorIndex % o.palette.series.length] ?? '#888',
      pattern: s.idle ? 'striped' : 'solid',
    });
  }
  return out;
}

export function buildBarOption(o: StackedBarOptions): EChartsCoreOption {
  const p = o.palette;
  const category = {
    type: 'category',
    data: o.categories,
    axisLine: { lineStyle: { color: p.axis } },
    axisLabel: { color: p.muted, hideOverlap: true },
    inverse: o.horizontal === true,
  };
  const value = {
    type: 'value',
    name: o.valueName,
    nameLocation: o.horizontal ? 'middle' : 'end',
    nameGap: o.horizontal ? 26 : 10,
    nameTextStyle: { color: p.muted, align: o.horizontal ? 'center' : 'left' },
    axisLabel: { color: p.muted, formatter: (v: number) => o.format(v), hideOverlap: true },
    splitLine: { lineStyle: { color: p.grid } },
  };
  return {
    animation: false,
    backgroundColor: 'transparent',
    textStyle: { color: p.text },
    grid: {
      left: 8,
      right: 16,
      top: o.valueName && !o.horizontal ? 28 : 14,
      bottom: o.valueName && o.horizontal ? 42 : 8, // the axis name below the labels (nameGap + its text)
      containLabel: true,
    },
    // The legend is page text next to the chart (ChartLegend.vue): every entry, wrapped, never paged.
    legend: { show: false },
    tooltip: {
      trigger: 'axis',
      axisPointer: { type: 'shadow' },
      backgroundColor: p.tooltipBackground,
      borderColor: p.tooltipBorder,
      textStyle: { color: p.text },
      formatter: (params: unknown) => {
        const list = (Array.isArray(params) ? params : [params]) as {
          seriesName?: string;
          seriesIndex?: number;
          color?: unknown;
          name?: string;
          value?: number | null;
        }[];
        const label = (x: (typeof list)[number]) => {
          const n = x.seriesName ?? '';
          return o.idleName && o.series[x.seriesIndex ?? -1]?.idle ? o.idleName(n) : n;
        };
        return tooltipElement(
          list[0]?.name ?? '',
          list
            .filter((x) => typeof x.value === 'number' && x.value > 0)
            .map((x) => ({
              color: typeof x.color === 'string' ? x.color : null,
              label: label(x),
              value: o.format(x.value as number),
            })),
        );
      },
    },
    xAxis: o.horizontal ? value : category,
    yAxis: o.horizontal ? category : value,
    series: o.series.map((s) => {
      const color = s.color ?? p.series[s.colorIndex % p.series.length] ?? '#888';
      return {
        type: 'bar',
        name: s.name,
        stack: s.stack ?? 'total',
        data: s.values,
        barMaxWidth: 48,
        color,
        itemStyle: s.idle
          ? {
              color,
              opacity: 0.55,
              decal: {
                symbol: 'rect',
                dashArrayX: [1, 0],
                dashArrayY: [2, 4],
                rotation: Math.PI / 4,
                color: 'rgba(0,0,0,0.45)',
              },
            }
          : { color },
      };
    }),
  };
}

/** Axis and tooltip text of a detail-chart metric (memory in GiB from MiB). */
export function metricFormatter(metric: string, locale: string): (v: number) => string {
  switch (metric) {
    case 'utilizationGpuPercent':
      return (v) => formatPercent(locale, v);
    case 'memoryUsedMiB':
      return (v) => {
        const gib = v / 1024;
        return `${formatNumber(locale, gib, gib >= 10 || Number.isInteger(gib) ? 0 : 1)} GiB`;
      };
    case 'temperatureCelsius':
      return (v) => formatCelsius(locale, v);
    case 'powerDrawWatts':
      return (v) => formatWatts(locale, v);
    case 'clocksSmMHz':
    case 'clocksMemoryMHz':
      return (v) => `${formatNumber(locale, v)} MHz`;
    default:
      return (v) => formatNumber(locale, v, 1);
  }
}

const timeFormats = new Map<string, Intl.DateTimeFormat>();
/** `14:05` within a day, `5월 3일 14:05` / `May 3, 14:05` with the date. */
export function formatChartTime(locale: string, time: number, withDate: boolean): string {
  const key = `${locale}|${withDate}`;
  let f = timeFormats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(
      locale,
      withDate
        ? { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }
        : { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
    );
    timeFormats.set(key, f);
  }
  return f.format(time);
}
