import { onMounted, onScopeDispose, type Ref, shallowRef } from 'vue';
import { type ECharts, type EChartsCoreOption, init } from '../lib/echarts.ts';
import { createThrottle } from '../lib/throttle.ts';

export interface UseEchartsOptions {
  /** The element the chart draws into (sized by CSS / the caller). */
  el: Readonly<Ref<HTMLElement | null>>;
  /** Builds the option from current state; called at most once per `minIntervalMs`. */
  build: () => EChartsCoreOption;
  /** Default 1000: a wall display needs no more than 1 update/s. */
  minIntervalMs?: number;
}

/**
 * An ECharts instance bound to the calling scope: created on mount, redrawn on `update()`
 * (throttled, merged with `lazyUpdate`), resized with its element, disposed with the scope.
 */
export function useEcharts(options: UseEchartsOptions) {
  const chart = shallowRef<ECharts | null>(null);
  let observer: ResizeObserver | null = null;

  const render = () => {
    chart.value?.setOption(options.build(), { notMerge: false, lazyUpdate: true, replaceMerge: ['series'] });
  };
  const throttle = createThrottle(render, { intervalMs: options.minIntervalMs ?? 1000 });

  onMounted(() => {
    const el = options.el.value;
    if (!el) return;
    chart.value = init(el, null, { renderer: 'canvas' });
    render();
    observer = new ResizeObserver(() => chart.value?.resize());
    observer.observe(el);
  });

  onScopeDispose(() => {
    throttle.cancel();
    observer?.disconnect();
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
