/**
 * Socket.IO's own parser (socket.io-parser), with two additions on the receiving side:
 *
 * - each decoded event's object arguments carry the byte size of the frame they came in
 *   (`frameBytesOf(payload)`), so a handler can refuse an oversized report with an ack
 *   (`TOO_LARGE`) instead of the transport closing the connection;
 * - a frame whose payload fails to decode (invalid JSON such as a bare `NaN`, a payload that is
 *   not an event array) no longer closes the connection: it is handed to the namespace as the
 *   event `MALFORMED_FRAME_EVENT` with the reason, and its ack id when it had one, so the server
 *   counts it, logs it once per connection and answers `VALIDATION`;
 * - optionally (`shedReplay`), while storage refuses reports anyway, a backlog replay report to
 *   `/agent` is not decoded at all: JSON-parsing a 500-sample batch only to answer "not now"
 *   costs milliseconds and garbage per resend. Its handler gets a stand-in
 *   (`shedReportOf(payload)`) and answers `UNAVAILABLE` without reading it.
 *
 * The wire format is unchanged (the encoder is socket.io-parser's).
 */
import { createRequire } from 'node:module';
import type { Server } from 'socket.io';

type ParserModule = Server['_parser'];
type Packet = { type: number; nsp: string; id?: number; data?: unknown };

/** The event name a malformed frame is dispatched as (server-internal; not part of the protocol). */
export const MALFORMED_FRAME_EVENT = 'gpupulse:malformed-frame';

export interface MalformedFrame {
  reason: string;
  bytes: number;
}

const FRAME_BYTES = Symbol('gpupulse.frameBytes');
const SHED = Symbol('gpupulse.shedReport');

/** The stand-in of a report that was not decoded (`shedReplay`). */
export interface ShedReport {
  bytes: number;
}

/** The stand-in of an undecoded replay report (see `shedReplay`), else null. A client cannot forge it. */
export function shedReportOf(payload: unknown): ShedReport | null {
  if (typeof payload !== 'object' || payload === null) return null;
  const v = (payload as { [SHED]?: unknown })[SHED];
  return typeof v === 'object' && v !== null ? (v as ShedReport) : null;
}

/**
 * The frame head of an agent's `samples:report` with an ack id, and its end when it is a replay as
 * agents send it (`{"samples":[…],"replay":true}`, the flag last): checked on the raw text, so
 * nothing is parsed. A frame that is not valid JSON after all is answered like any shed report.
 */
const REPORT_EVENT = '["samples:report",';
const REPLAY_TAIL = ',"replay":true}]';
function isReplayReport(str: string, nsp: string): boolean {
  if (!str.endsWith(REPLAY_TAIL)) return false;
  if (str.charCodeAt(0) - 48 !== EVENT || !str.startsWith(nsp, 1) || str.charAt(1 + nsp.length) !== ',') {
    return false;
  }
  let i = 2 + nsp.length;
  const digits = i;
  while (i < str.length && str.charCodeAt(i) >= 48 && str.charCodeAt(i) <= 57) i++;
  return i > digits && i - digits <= 16 && str.startsWith(REPORT_EVENT, i);
}

/** The size in bytes of the frame an event argument came in; null when unknown. */
export function frameBytesOf(payload: unknown): number | null {
  if (typeof payload !== 'object' || payload === null) return null;
  const v = (payload as { [FRAME_BYTES]?: unknown })[FRAME_BYTES];
  return typeof v === 'number' ? v : null;
}

/** socket.io-parser as socket.io itself loads it (it is socket.io's dependency, not ours). */
function loadBaseParser(): ParserModule {
  const req = createRequire(import.meta.url);
  const fromSocketIo = createRequire(req.resolve('socket.io'));
  return fromSocketIo('socket.io-parser') as ParserModule;
}

const EVENT = 2;

/** Type, namespace and ack id of a frame whose payload did not decode; null if even those are bad. */
function headerOf(str: string): { nsp: string; id: number | undefined } | null {
  if (str.charCodeAt(0) - 48 !== EVENT) return null;
  let i = 1;
  let nsp = '/';
  if (str.charAt(i) === '/') {
    const comma = str.indexOf(',', i);
    if (comma < 0) return null;
    nsp = str.slice(i, comma);
    i = comma + 1;
  }
  let digits = '';
  while (i < str.length && str.charCodeAt(i) >= 48 && str.charCodeAt(i) <= 57 && digits.length < 16) {
    digits += str.charAt(i);
    i++;
  }
  return { nsp, id: digits === '' ? undefined : Number(digits) };
}

export interface FrameParserOptions {
  /** UTF-8 bytes are counted only when a frame could exceed this (below, its length is its size). */
  exactAbove?: number;
  /**
   * Replay reports to this namespace (`/agent`) are not decoded when `shed(frameBytes)` says
   * storage would refuse a report of that size anyway: the handler sees `shedReportOf(payload)`.
   */
  shedReplay?: { nsp: string; shed: (frameBytes: number) => boolean };
}

/**
 * The parser to pass as Socket.IO's `parser` option. Sizes are UTF-8 bytes, computed only when
 * the string could exceed `exactAbove` characters/3.
 */
export function createFrameParser(opts: FrameParserOptions = {}): ParserModule {
  const base = loadBaseParser();
  const exactAbove = opts.exactAbove ?? 0;
  const shedReplay = opts.shedReplay ?? null;
  const sizeOf = (str: string) =>
    // UTF-8 is at most 3 bytes per UTF-16 unit: below that, the length alone decides "small".
    str.length * 3 <= exactAbove ? str.length : Buffer.byteLength(str, 'utf8');

  // decodeString is private in the typings but a plain method of socket.io-parser's Decoder,
  // called by its `add()` for every text frame.
  type DecoderBase = new (...args: unknown[]) => object;
  const BaseDecoder = base.Decoder as unknown as DecoderBase;
  class FrameDecoder extends BaseDecoder {
    decodeString(str: string): Packet {
      const bytes = sizeOf(str);
      if (shedReplay && isReplayReport(str, shedReplay.nsp) && shedReplay.shed(bytes)) {
        const header = headerOf(str)!;
        const standIn = {};
        Object.defineProperty(standIn, SHED, { value: { bytes } satisfies ShedReport, enumerable: false });
        Object.defineProperty(standIn, FRAME_BYTES, { value: bytes, enumerable: false });
        return { type: EVENT, nsp: header.nsp, id: header.id, data: ['samples:report', standIn] };
      }
      let packet: Packet;
      try {
        packet = (base.Decoder.prototype as unknown as { decodeString(s: string): Packet }).decodeString.call(
          this,
          str,
        );
      } catch (err) {
        const header = headerOf(str);
        if (!header) throw err;
        const reason = err instanceof Error ? err.message : String(err);
        const info: MalformedFrame = { reason, bytes };
        return { type: EVENT, nsp: header.nsp, id: header.id, data: [MALFORMED_FRAME_EVENT, info] };
      }
      if (packet.type === EVENT && Array.isArray(packet.data)) {
        for (const arg of packet.data) {
          if (typeof arg === 'object' && arg !== null) {
            Object.defineProperty(arg, FRAME_BYTES, { value: bytes, enumerable: false });
          }
        }
      }
      return packet;
    }
  }
  return { ...base, Decoder: FrameDecoder } as unknown as ParserModule;
}
