import { onMounted, onScopeDispose, type Ref, shallowRef } from 'vue';
import {
  chartTextScale,
  type ECharts,
  type EChartsCoreOption,
  init,
  scaleChartText,
} from '../lib/echarts.ts';
import { createThrottle } from '../lib/throttle.ts';

export interface UseEchartsOptions {
  /** The element the chart draws into (sized by CSS / the caller). */
  el: Readonly<Ref<HTMLElement | null>>;
  /** Builds the option from current state; called at most once per `minIntervalMs`. */
  build: () => EChartsCoreOption;
  /** Default 1000: a wall display needs no more than 1 update/s. */
  minIntervalMs?: number;
}

/** The instance, as a property of its element (the browser tests read its option from there). */
export const CHART_PROPERTY = '__gpupulseChart';

/**
 * An ECharts instance bound to the calling scope: created on mount, redrawn on `update()`
 * (throttled, series replaced by id, drawn at once), resized with its element, disposed with the scope.
 * Canvas text scales as the page's text does (`chartTextScale`: 4K, kiosk), re-applied on resize.
 */
export function useEcharts(options: UseEchartsOptions) {
  const chart = shallowRef<ECharts | null>(null);
  let observer: ResizeObserver | null = null;
  let scale = 1;

  const render = () => {
    if (!chart.value) return;
    scale = chartTextScale();
    // Not `lazyUpdate`: a lazy update leaves the new series without their data until the next
    // frame, and a pointer moving over the chart in between made ECharts' hover throw
    // ("reading 'getRawIndex'"), a few times a minute on a live chart. Updates are throttled anyway.
    chart.value.setOption(scaleChartText(options.build(), scale), {
      notMerge: false,
      lazyUpdate: false,
      replaceMerge: ['series'],
    });
  };
  const throttle = createThrottle(render, { intervalMs: options.minIntervalMs ?? 1000 });

  onMounted(() => {
    const el = options.el.value;
    if (!el) return;
    chart.value = init(el, null, { renderer: 'canvas' });
    (el as unknown as Record<string, unknown>)[CHART_PROPERTY] = chart.value;
    render();
    observer = new ResizeObserver(() => {
      // The viewport changed the page's text size: the chart's text follows.
      if (chartTextScale() !== scale) render();
      chart.value?.resize();
    });
    observer.observe(el);
  });

  onScopeDispose(() => {
    throttle.cancel();
    observer?.disconnect();
    const el = options.el.value;
    if (el) delete (el as unknown as Record<string, unknown>)[CHART_PROPERTY];
    chart.value?.dispose();
    chart.value = null;
  });

  return {
    chart,
    /** Throttled redraw (≤ 1/s by default). */
    update: () => throttle.request(),
    /** Redraw now (layout or theme change). */
    renderNow: () => render(),
  };
}
