import { defineStore } from 'pinia';
import { ref, watch } from 'vue';

export type Theme = 'dark' | 'light';
export const THEME_STORAGE_KEY = 'gpupulse.theme';

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

/**
 * The viewer's theme, persisted in localStorage and mirrored to `<html data-theme>`.
 * Dark is the default: the wall display. (The language lives in vue-i18n's global
 * locale; `main.ts` persists it and mirrors it to `<html lang>`.)
 */
export const usePreferencesStore = defineStore('preferences', () => {
  const theme = ref<Theme>(readStorage(THEME_STORAGE_KEY) === 'light' ? 'light' : 'dark');

  watch(
    theme,
    (value) => {
      document.documentElement.dataset.theme = value;
      writeStorage(THEME_STORAGE_KEY, value);
    },
    { immediate: true },
  );

  function toggleTheme(): void {
    theme.value = theme.value === 'dark' ? 'light' : 'dark';
  }

  return { theme, toggleTheme };
});
