export * from './access.ts';
export * from './ack.ts';
export * from './events.ts';
export * from './fleet.ts';
export * from './metrics.ts';
export * from './nudges.ts';
export * from './schemas.ts';
export * from './usage.ts';
