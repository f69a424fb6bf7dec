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
