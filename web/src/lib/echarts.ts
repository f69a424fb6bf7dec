/**
 * The one place ECharts is assembled: `echarts/core` plus only the parts the app draws with.
 * Add a chart or component here when a view needs it (each adds to the bundle).
 */
import { BarChart, CustomChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, MarkAreaComponent, TooltipComponent } from 'echarts/components';
import { init, use } from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';

// Line/Bar + Grid/Legend: the detail charts and Trends; MarkArea: the "no data yet" part of a range.
use([
  CustomChart,
  LineChart,
  BarChart,
  TooltipComponent,
  GridComponent,
  LegendComponent,
  MarkAreaComponent,
  CanvasRenderer,
]);

export type { ECharts, EChartsCoreOption } from 'echarts/core';
export { init };

/** ECharts' own text size (px) and the root font size (px) of the layout at 1920 px (styles/main.css). */
const BASE_FONT_PX = 12;
const BASE_ROOT_PX = 15;

/**
 * How much larger chart text is drawn than ECharts' defaults: the page's root font size against
 * the 1920-px layout's (15 px). Pages scale rem with the viewport at >= 2560 px (main.css) and in
 * kiosk mode (kiosk.css); canvas text follows the same factor, never smaller than 1.
 */
export function chartTextScale(root: Element | null = globalThis.document?.documentElement ?? null): number {
  if (!root) return 1;
  const px = Number.parseFloat(getComputedStyle(root).fontSize);
  return Number.isFinite(px) && px > BASE_ROOT_PX ? px / BASE_ROOT_PX : 1;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const each = (v: unknown, f: (o: Obj) => Obj): unknown =>
  Array.isArray(v) ? v.map((x) => (isObj(x) ? f(x) : x)) : isObj(v) ? f(v) : v;

/**
 * The option with every text size ECharts draws on the canvas (axis labels and names, tooltip,
 * series and mark-area labels) and the pixel margins around them multiplied by `scale`; sizes an
 * option leaves out start from ECharts' default (12 px). Returns the option itself at scale 1.
 */
export function scaleChartText<T extends object>(option: T, scale: number): T {
  if (!(scale > 1)) return option;
  const size = (style: unknown): Obj => {
    const s = isObj(style) ? style : {};
    const base = typeof s.fontSize === 'number' ? s.fontSize : BASE_FONT_PX;
    return { ...s, fontSize: Math.round(base * scale) };
  };
  const px = (v: unknown) => (typeof v === 'number' ? Math.round(v * scale) : v);
  const axis = (a: Obj): Obj => ({
    ...a,
    axisLabel: size(a.axisLabel),
    nameTextStyle: size(a.nameTextStyle),
    ...(a.nameGap !== undefined ? { nameGap: px(a.nameGap) } : {}),
  });
  const o = option as Obj;
  const out: Obj = { ...o, textStyle: size(o.textStyle) };
  if (o.xAxis !== undefined) out.xAxis = each(o.xAxis, axis);
  if (o.yAxis !== undefined) out.yAxis = each(o.yAxis, axis);
  if (o.tooltip !== undefined) out.tooltip = each(o.tooltip, (t) => ({ ...t, textStyle: size(t.textStyle) }));
  if (o.grid !== undefined)
    out.grid = each(o.grid, (g) => ({
      ...g,
      left: px(g.left),
      right: px(g.right),
      top: px(g.top),
      bottom: px(g.bottom),
    }));
  if (o.series !== undefined)
    out.series = each(o.series, (s) => {
      const r: Obj = { ...s };
      if (isObj(s.label)) r.label = size(s.label);
      if (isObj(s.markArea) && isObj(s.markArea.label))
        r.markArea = { ...s.markArea, label: size(s.markArea.label) };
      if (typeof s.symbolSize === 'number') r.symbolSize = px(s.symbolSize);
      return r;
    });
  return out as T;
}
