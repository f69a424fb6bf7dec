import { createI18n } from 'vue-i18n';
import { en, type MessageSchema } from './en.ts';
import { ko } from './ko.ts';

export const LOCALES = ['en', 'ko'] as const;
export type AppLocale = (typeof LOCALES)[number];

export const LOCALE_STORAGE_KEY = 'gpupulse.locale';

export function isAppLocale(value: unknown): value is AppLocale {
  return typeof value === 'string' && (LOCALES as readonly string[]).includes(value);
}

/** The URL's language parameter (`?lang=ko|en`, any route, the kiosk included), else null. */
export function urlLocale(search: string): AppLocale | null {
  const lang = new URLSearchParams(search).get('lang')?.toLowerCase() ?? null;
  return isAppLocale(lang) ? lang : null;
}

/**
 * `?lang=` in the URL (a wall display's link decides, whatever the browser's locale), else the
 * stored choice, else the browser's language (`ko-KR` → `ko`), else English.
 */
export function initialLocale(
  stored: string | null,
  languages: readonly string[],
  fromUrl: AppLocale | null = null,
): AppLocale {
  if (fromUrl) return fromUrl;
  if (isAppLocale(stored)) return stored;
  for (const lang of languages) {
    const base = lang.toLowerCase().split('-')[0];
    if (isAppLocale(base)) return base;
  }
  return 'en';
}

export function createAppI18n(locale: AppLocale) {
  return createI18n<[MessageSchema], AppLocale, false>({
    legacy: false,
    locale,
    fallbackLocale: 'en',
    messages: { en, ko },
  });
}
