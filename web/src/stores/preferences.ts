import { defineStore } from 'pinia';
import { computed, ref, watch } from 'vue';
import { type KioskParams, parseKioskParams } from '../lib/kiosk-params.ts';
import type { ColorMode } from '../lib/wall-colors.ts';

export type Theme = 'dark' | 'light';
export const THEME_STORAGE_KEY = 'gpupulse.theme';
export const PRIVACY_STORAGE_KEY = 'gpupulse.privacy';
export const COLOR_MODE_STORAGE_KEY = 'gpupulse.wallColor';

export function readStorage(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function writeStorage(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Private mode or storage disabled: the choice lasts for this page only.
  }
}

function pageParams(): KioskParams {
  return parseKioskParams(typeof window === 'undefined' ? '' : window.location.search);
}

/**
 * The viewer's choices: theme, wall colour mode and privacy (persisted in localStorage), and the
 * display parameters of the page URL (`?kiosk=1&rotate=30&privacy=1&color=temperature`).
 * Dark is the default theme (the wall display); kiosk mode forces dark without storing it, and
 * turns privacy on unless the URL says `privacy=0`. The theme is mirrored to `<html data-theme>`,
 * kiosk to `<html data-kiosk>`. (The language lives in vue-i18n's global locale; `main.ts`
 * persists it and mirrors it to `<html lang>`.)
 */
export const usePreferencesStore = defineStore('preferences', () => {
  const params = pageParams();
  const theme = ref<Theme>(readStorage(THEME_STORAGE_KEY) === 'light' ? 'light' : 'dark');
  const kiosk = ref(params.kiosk);
  const rotateSeconds = ref<number | null>(params.rotateSeconds);
  const privacy = ref<boolean>(params.privacy ?? (params.kiosk || readStorage(PRIVACY_STORAGE_KEY) === '1'));
  const storedColor = readStorage(COLOR_MODE_STORAGE_KEY);
  const colorMode = ref<ColorMode>(
    params.colorMode ?? (storedColor === 'temperature' ? 'temperature' : 'utilization'),
  );
  /** The theme in effect: kiosk displays are always dark, high contrast. */
  const effectiveTheme = computed<Theme>(() => (kiosk.value ? 'dark' : theme.value));

  watch(
    effectiveTheme,
    (value) => {
      if (typeof document !== 'undefined') document.documentElement.dataset.theme = value;
    },
    { immediate: true },
  );
  watch(theme, (value) => writeStorage(THEME_STORAGE_KEY, value));
  watch(
    kiosk,
    (value) => {
      if (typeof document === 'undefined') return;
      if (value) document.documentElement.dataset.kiosk = '1';
      else delete document.documentElement.dataset.kiosk;
    },
    { immediate: true },
  );

  function toggleTheme(): void {
    theme.value = theme.value === 'dark' ? 'light' : 'dark';
  }
  function setPrivacy(on: boolean): void {
    privacy.value = on;
    writeStorage(PRIVACY_STORAGE_KEY, on ? '1' : '0');
  }
  function setColorMode(mode: ColorMode): void {
    colorMode.value = mode;
    writeStorage(COLOR_MODE_STORAGE_KEY, mode);
  }

  return {
    theme,
    effectiveTheme,
    kiosk,
    rotateSeconds,
    privacy,
    colorMode,
    toggleTheme,
    setPrivacy,
    setColorMode,
  };
});
