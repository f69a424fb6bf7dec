/**
 * Side-effect entry for browsers: `import '@gpupulse/protocol/jitless'` as the FIRST import of the
 * app, before any schema is built. zod compiles object parsers with `new Function`, and even its
 * feature probe (run when a schema is built) is reported as a violation by a Content-Security-Policy
 * without 'unsafe-eval', which the dashboard's is. Parsing stays the same, only interpreted.
 * Servers and agents do not import this and keep the compiled parsers.
 */
import { z } from 'zod';

z.config({ jitless: true });
