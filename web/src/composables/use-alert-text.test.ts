import type { Alert } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { createAppI18n } from '../i18n/index.ts';
import { alertText } from './use-alert-text.ts';

const alert = (o: Partial<Alert> = {}): Alert => ({
  id: 'a',
  rule: 'gpu_temperature_high',
  severity: 'critical',
  state: 'firing',
  node: 'n1',
  gpuUuid: 'GPU-1',
  gpuIndex: 0,
  project: null,
  message: 'm',
  value: 87,
  peak: 87,
  threshold: 85,
  startedAt: 1,
  endedAt: null,
  ...o,
});

describe('alert text', () => {
  for (const locale of ['en', 'ko'] as const) {
    const i18n = createAppI18n(locale);
    const t = (k: string, p?: Record<string, unknown>) => i18n.global.t(k, p ?? {});
    it(`${locale}: a firing alert reads its current value; a resolved one says resolved, with its peak`, () => {
      expect(alertText(alert(), t, locale, false)).toContain('87');
      const done = alertText(alert({ state: 'resolved', value: 82, peak: 91, endedAt: 2 }), t, locale, false);
      expect(done).toMatch(locale === 'en' ? /resolved/ : /해소/);
      expect(done).toContain('91');
      expect(done).toContain('85');
      expect(done).not.toContain('82');
      // Never the firing sentence ("GPU temperature high: 82 °C (threshold 85 °C)").
      expect(done).not.toBe(alertText(alert({ value: 82 }), t, locale, false));
      expect(
        alertText(
          alert({ rule: 'node_offline', state: 'resolved', value: 300, peak: 300 }),
          t,
          locale,
          false,
        ),
      ).not.toContain('300');
    });
  }
});
