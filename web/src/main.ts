// First import: zod must be jitless before any schema is built (see the module).
import '@gpupulse/protocol/jitless';
import { createPinia } from 'pinia';
import { createApp, watch } from 'vue';
import App from './App.vue';
import { createAppI18n, initialLocale, LOCALE_STORAGE_KEY, urlLocale } from './i18n/index.ts';
import { loadLocaleFont } from './lib/locale-font.ts';
import { createAppRouter } from './router.ts';
import { readStorage, writeStorage } from './stores/preferences.ts';
import './styles/main.css';

const fromUrl = urlLocale(window.location.search);
const locale = initialLocale(
  readStorage(LOCALE_STORAGE_KEY),
  navigator.languages?.length ? navigator.languages : [navigator.language],
  fromUrl,
);
document.documentElement.lang = locale;
void loadLocaleFont(locale);
const i18n = createAppI18n(locale);
const router = createAppRouter();
watch(i18n.global.locale, (value) => {
  document.documentElement.lang = value;
  void loadLocaleFont(value);
  // A switch made on the page is stored, and a `?lang=` in the URL follows it (a reload keeps
  // the language shown).
  writeStorage(LOCALE_STORAGE_KEY, value);
  const route = router.currentRoute.value;
  if (typeof route.query.lang === 'string' && route.query.lang !== value)
    void router.replace({ query: { ...route.query, lang: value } });
});

createApp(App).use(createPinia()).use(i18n).use(router).mount('#app');
