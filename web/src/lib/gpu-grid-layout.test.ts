import { describe, expect, it } from 'vitest';
import { gpu, node } from '../test/fixtures.ts';
import { layoutGpuGrid } from './gpu-grid-layout.ts';

describe('layoutGpuGrid', () => {
  it('is empty for no nodes', () => {
    const l = layoutGpuGrid([], { width: 1000 });
    expect(l.tiles).toHaveLength(0);
    expect(l.height).toBe(0);
  });

  it('places every GPU of every node, node blocks wrapping to the width', () => {
    const eight = Array.from({ length: 8 }, (_, i) => gpu(i));
    const nodes = Array.from({ length: 10 }, (_, i) => node(`n${i}`, { gpus: eight }));
    const l = layoutGpuGrid(nodes, { width: 1000, tileSize: 20 });
    expect(l.tiles).toHaveLength(80);
    expect(l.labels).toHaveLength(10);
    for (const t of l.tiles) expect(t.x + t.size).toBeLessThanOrEqual(l.width);
    // Tiles of one node share the node's row.
    const n0 = l.tiles.filter((t) => t.nodeIndex === 0);
    expect(new Set(n0.map((t) => t.y)).size).toBe(1);
    expect(l.height).toBeGreaterThan(0);
  });

  it('keeps unknown utilization as null and marks offline nodes', () => {
    const l = layoutGpuGrid(
      [
        node('a', { gpus: [gpu(0, { utilizationGpuPercent: null })] }),
        node('b', { status: 'offline', gpus: [gpu(0)] }),
      ],
      { width: 800 },
    );
    expect(l.tiles[0]).toMatchObject({ util: null, activity: 'unknown' });
    expect(l.tiles[1]).toMatchObject({ util: null, activity: 'offline' });
  });

  it('lays out 1,000 × 8 GPUs quickly', () => {
    const eight = Array.from({ length: 8 }, (_, i) => gpu(i));
    const nodes = Array.from({ length: 1000 }, (_, i) => node(`n${i}`, { gpus: eight }));
    const t0 = performance.now();
    const l = layoutGpuGrid(nodes, { width: 1900 });
    expect(l.tiles).toHaveLength(8000);
    expect(performance.now() - t0).toBeLessThan(200);
  });
});
