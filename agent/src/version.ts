/** Reported in the handshake and the inventory. Keep in step with package.json. */
export const AGENT_VERSION = '0.1.0';
