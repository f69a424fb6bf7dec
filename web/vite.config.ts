/// <reference types="vitest/config" />
import vue from '@vitejs/plugin-vue';
import { defineConfig, type Plugin } from 'vite';

/**
 * `@gpupulse/protocol` also builds zod schemas at module top level; the browser uses only its
 * types and constants. Declaring its modules side-effect-free lets the bundler drop the unused
 * ones (and zod with them). Remove once protocol/package.json says `"sideEffects": false`.
 */
function protocolWithoutSideEffects(): Plugin {
  return {
    name: 'gpupulse:protocol-side-effect-free',
    transform(code, id) {
      if (/[\\/]protocol[\\/]src[\\/][^\\/]+\.ts$/.test(id))
        return { code, map: null, moduleSideEffects: false };
      return null;
    },
  };
}

/** Where `pnpm dev` sends API and Socket.IO traffic (a running gpupulse-server). */
const devServer = process.env.GPUPULSE_DEV_SERVER ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [vue(), protocolWithoutSideEffects()],
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
