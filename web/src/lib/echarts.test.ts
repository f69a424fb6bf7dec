import { describe, expect, it } from 'vitest';
import { scaleChartText } from './echarts.ts';

describe('scaleChartText', () => {
  const option = {
    textStyle: { color: '#fff' },
    grid: { left: 8, top: 28, containLabel: true },
    tooltip: { trigger: 'axis', textStyle: { color: '#fff' } },
    xAxis: { type: 'time', axisLabel: { color: '#aaa', hideOverlap: true } },
    yAxis: [{ type: 'value', name: '%', nameGap: 10, nameTextStyle: { align: 'left' } }],
    series: [{ type: 'line', symbolSize: 5, markArea: { label: { show: true, fontSize: 13 } } }],
  };

  it('leaves the option alone at the 1920-px layout', () => {
    expect(scaleChartText(option, 1)).toBe(option);
  });

  it("scales every canvas text from ECharts' 12 px (or its own size), and the margins", () => {
    const o = scaleChartText(option, 2);
    expect(o.xAxis.axisLabel).toEqual({ color: '#aaa', hideOverlap: true, fontSize: 24 });
    expect(o.yAxis[0]).toMatchObject({ nameGap: 20, nameTextStyle: { align: 'left', fontSize: 24 } });
    expect(o.tooltip.textStyle).toEqual({ color: '#fff', fontSize: 24 });
    expect(o.textStyle).toEqual({ color: '#fff', fontSize: 24 });
    expect(o.grid).toMatchObject({ left: 16, top: 56, containLabel: true });
    expect(o.series[0]?.markArea.label.fontSize).toBe(26);
    expect(o.series[0]?.symbolSize).toBe(10);
    // The input is not changed.
    expect(option.xAxis.axisLabel).toEqual({ color: '#aaa', hideOverlap: true });
  });
});
