import { StorageWarningCodeSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { en } from './en.ts';
import { initialLocale, urlLocale } from './index.ts';
import { ko } from './ko.ts';

function keys(obj: object, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) =>
    typeof v === 'string' ? [`${prefix}${k}`] : keys(v as object, `${prefix}${k}.`),
  );
}

describe('messages', () => {
  it('ko has exactly the keys of en, none empty', () => {
    expect(keys(ko).sort()).toEqual(keys(en).sort());
    for (const k of keys(ko))
      expect(k.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown>)[p], ko)).not.toBe('');
  });

  it("says every storage warning code of the server's in both languages", () => {
    for (const code of StorageWarningCodeSchema.options) {
      expect(en.banner.storageCodes[code]).toBeTruthy();
      expect(ko.banner.storageCodes[code]).toMatch(/[가-힣]/);
    }
  });

  it('ko is actually Korean where words are translated', () => {
    expect(ko.gpu.utilization).toBe('가동률');
    expect(ko.gpu.temperature).toBe('온도');
    expect(ko.connection.reconnecting).toBe('재연결 중');
  });
});

describe('initialLocale', () => {
  it('prefers the stored choice, then the browser language, then English', () => {
    expect(initialLocale('ko', ['en-US'])).toBe('ko');
    expect(initialLocale(null, ['ko-KR', 'en'])).toBe('ko');
    expect(initialLocale('xx', ['de-DE', 'en-GB'])).toBe('en');
    expect(initialLocale(null, ['fr'])).toBe('en');
    // `?lang=` (a kiosk link) wins over the stored choice and the browser's language.
    expect(initialLocale('en', ['en-US'], urlLocale('?kiosk=1&lang=ko'))).toBe('ko');
    expect(urlLocale('?lang=EN')).toBe('en');
    expect(urlLocale('?lang=de')).toBeNull();
    expect(urlLocale('')).toBeNull();
  });
});
