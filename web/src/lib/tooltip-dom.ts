/**
 * Chart tooltips as DOM nodes, not HTML strings. ECharts puts a string formatter's result in the
 * page with `innerHTML`, and the markers it makes (`params.marker`) carry `style="…"`
 * attributes, which the server's Content-Security-Policy (`style-src 'self'`, no
 * 'unsafe-inline') blocks. Nodes built here set colours through the CSSOM (`el.style.x = …`),
 * which CSP allows, and text through `textContent` (no escaping to get wrong).
 */

export interface TooltipRow {
  /** Series colour for the square marker; none: no marker. */
  color?: string | null;
  label: string;
  value: string;
}

/** `<div><div class="tt-head">head</div><div class="tt-row">■ label: <b>value</b></div>…</div>` */
export function tooltipElement(
  head: string | null,
  rows: readonly TooltipRow[],
  boldHead = false,
): HTMLElement {
  const root = document.createElement('div');
  root.className = 'chart-tooltip';
  if (head) {
    const h = document.createElement('div');
    h.className = 'tt-head';
    h.textContent = head;
    if (boldHead) h.style.fontWeight = '700';
    root.append(h);
  }
  for (const r of rows) {
    const row = document.createElement('div');
    row.className = 'tt-row';
    if (r.color) {
      const marker = document.createElement('span');
      marker.className = 'tt-marker';
      marker.style.display = 'inline-block';
      marker.style.width = '10px';
      marker.style.height = '10px';
      marker.style.borderRadius = '2px';
      marker.style.marginRight = '6px';
      marker.style.background = r.color;
      row.append(marker);
    }
    const value = document.createElement('b');
    value.textContent = r.value;
    row.append(`${r.label}: `, value);
    root.append(row);
  }
  return root;
}
