import { describe, expect, it } from 'vitest';
import { node } from '../test/fixtures.ts';
import { groupNodes, rackOf } from './wall-groups.ts';
import { hitTest, layoutWall, tileOrigin } from './wall-layout.ts';

const eights = (n: number) => Array.from({ length: n }, () => 8);

describe('rack grouping', () => {
  it('takes the prefix before the last -NNNN', () => {
    expect(rackOf('rack-a-0012')).toBe('rack-a');
    expect(rackOf('dgx_07')).toBe('dgx');
    expect(rackOf('gpu1')).toBe('');
    expect(rackOf('노드-0001')).toBe('노드');
    expect(rackOf('<img src=x onerror=alert(1)>-0003')).toBe('<img src=x onerror=alert(1)>');
  });

  it('groups in order of first appearance', () => {
    const g = groupNodes([node('a-1'), node('a-2'), node('b-1'), node('solo')]);
    expect(g.map((x) => [x.name, x.nodes.length])).toEqual([
      ['a', 2],
      ['b', 1],
      ['', 1],
    ]);
  });
});

describe('fitted wall layout', () => {
  it('fits 1,000 nodes × 8 GPUs into a 1080p area without overflow', () => {
    const l = layoutWall([{ name: '', gpuCounts: eights(1000) }], { width: 1880, height: 760 });
    expect(l.overflow).toBe(false);
    expect(l.height).toBeLessThanOrEqual(760);
    expect(l.tileCount).toBe(8000);
    expect(l.tile).toBeGreaterThanOrEqual(8);
  });

  it('uses bigger tiles on a 4K wall and the biggest allowed for a small fleet', () => {
    const fhd = layoutWall([{ name: '', gpuCounts: eights(1000) }], { width: 1880, height: 760 });
    const uhd = layoutWall([{ name: '', gpuCounts: eights(1000) }], { width: 3820, height: 1800 });
    expect(uhd.tile).toBeGreaterThan(fhd.tile);
    const small = layoutWall([{ name: '', gpuCounts: eights(2) }], { width: 1600, height: 700, maxTile: 72 });
    expect(small.tile).toBe(72);
  });

  it('gives each rack its own header and start line when there are several', () => {
    const l = layoutWall(
      [
        { name: 'a', gpuCounts: eights(3) },
        { name: 'b', gpuCounts: eights(2) },
      ],
      { width: 1200, height: 600 },
    );
    expect(l.headers.map((h) => h.name)).toEqual(['a', 'b']);
    expect(l.blockX[3]).toBe(0); // first node of rack b starts a line
    expect(l.blockY[3]).toBeGreaterThan(l.blockY[2]!);
    const single = layoutWall([{ name: 'a', gpuCounts: eights(3) }], { width: 1200, height: 600 });
    expect(single.headers).toEqual([]);
  });

  it('every tile lies inside the layout and no two tiles overlap', () => {
    const l = layoutWall([{ name: '', gpuCounts: [8, 4, 8, 2, 16] }], { width: 700, height: 500 });
    const seen = new Set<string>();
    for (let i = 0; i < l.nodeCount; i++) {
      const count = l.tileStart[i + 1]! - l.tileStart[i]!;
      for (let j = 0; j < count; j++) {
        const o = tileOrigin(l, i, j);
        expect(o.x + l.tile).toBeLessThanOrEqual(l.width);
        expect(o.y + l.tile).toBeLessThanOrEqual(l.height);
        const key = `${o.x},${o.y}`;
        expect(seen.has(key)).toBe(false);
        seen.add(key);
      }
    }
  });

  it('hit-tests tiles, labels and gaps', () => {
    const l = layoutWall([{ name: '', gpuCounts: [8, 8] }], { width: 900, height: 400 });
    const o = tileOrigin(l, 1, 5);
    expect(hitTest(l, o.x + 1, o.y + 1)).toEqual({ nodeIndex: 1, position: 5 });
    expect(hitTest(l, o.x + l.tile + l.gap / 2, o.y + 1)?.position ?? null).not.toBe(5);
    if (l.labelHeight > 0)
      expect(hitTest(l, l.blockX[0]! + 2, l.blockY[0]! + 2)).toEqual({ nodeIndex: 0, position: -1 });
    expect(hitTest(l, l.width + 50, 5)).toBeNull();
  });

  it('an empty fleet lays out to nothing', () => {
    const l = layoutWall([], { width: 800, height: 600 });
    expect(l.nodeCount).toBe(0);
    expect(l.height).toBe(0);
  });
});
