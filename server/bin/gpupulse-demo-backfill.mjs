#!/usr/bin/env node
// Demo only: generated history for the past days (server/scripts/backfill-demo.ts), through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../scripts/backfill-demo.ts');
