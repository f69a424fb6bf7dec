/**
 * The one place ECharts is assembled: `echarts/core` plus only the parts the app draws with.
 * Add a chart or component here when a view needs it (each adds to the bundle).
 */
import { CustomChart } from 'echarts/charts';
import { TooltipComponent } from 'echarts/components';
import { init, use } from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';

use([CustomChart, TooltipComponent, CanvasRenderer]);

export type { ECharts, EChartsCoreOption } from 'echarts/core';
export { init };
