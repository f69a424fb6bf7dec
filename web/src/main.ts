import { createPinia } from 'pinia';
import { createApp, watch } from 'vue';
import App from './App.vue';
import { createAppI18n, initialLocale, LOCALE_STORAGE_KEY } from './i18n/index.ts';
import { createAppRouter } from './router.ts';
import { readStorage, writeStorage } from './stores/preferences.ts';
import './styles/main.css';

const locale = initialLocale(
  readStorage(LOCALE_STORAGE_KEY),
  navigator.languages?.length ? navigator.languages : [navigator.language],
);
document.documentElement.lang = locale;
const i18n = createAppI18n(locale);
watch(i18n.global.locale, (value) => {
  document.documentElement.lang = value;
  writeStorage(LOCALE_STORAGE_KEY, value);
});

createApp(App).use(createPinia()).use(i18n).use(createAppRouter()).mount('#app');
