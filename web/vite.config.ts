/// <reference types="vitest/config" />
import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

/** Where `pnpm dev` sends API and Socket.IO traffic (a running gpupulse-server). */
const devServer = process.env.GPUPULSE_DEV_SERVER ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [vue()],
  define: {
    // vue-i18n: composition API only, no devtools in production.
    __VUE_I18N_FULL_INSTALL__: true,
    __VUE_I18N_LEGACY_API__: false,
    __INTLIFY_PROD_DEVTOOLS__: false,
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    // The browser's Host (localhost:5173) is passed through unchanged: the server's Origin check
    // then sees a same-origin page, and sign-in redirects come back through this proxy.
    proxy: {
      '/socket.io': { target: devServer, ws: true },
      '/api': { target: devServer },
      '/metrics': { target: devServer },
      '/auth': { target: devServer },
    },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
