// Pure parsing of NVIDIA XID lines from the kernel log (`/dev/kmsg` records or `dmesg` lines).

export interface XidRecord {
  /** PCI address as the kernel prints it, e.g. `0000:3b:00`. */
  pci: string;
  code: number;
  /** The text after the XID number (pid, name, description). */
  message: string;
  /** Monotonic µs since boot from a `/dev/kmsg` record; null for plain lines. */
  monotonicUs: number | null;
}

// `NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.`
// `NVRM: Xid (0000:3b:00): 79, …` (some drivers omit `PCI:`); `(PCI:0000:3b:00.0)` tolerated.
const XID = /NVRM: Xid \((?:PCI:)?([0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}(?:\.[0-7])?)\): (\d+),?\s*(.*)$/i;

/**
 * One kernel log line → an XID record, or null. Accepts `/dev/kmsg` records
 * (`<prio>,<seq>,<µs>,<flags>;<text>`), `dmesg` lines (`[12345.678901] NVRM: …`), journal lines
 * (`… kernel: NVRM: …`) and bare text.
 */
export function parseXidLine(line: string): XidRecord | null {
  let text = line;
  let monotonicUs: number | null = null;
  const kmsg = /^\d+,\d+,(\d+),[^;]*;(.*)$/.exec(line);
  if (kmsg) {
    monotonicUs = Number(kmsg[1]);
    text = kmsg[2] ?? '';
  }
  const m = XID.exec(text);
  if (!m) return null;
  return {
    pci: (m[1] ?? '').toLowerCase(),
    code: Number(m[2]),
    message: (m[3] ?? '').trim(),
    monotonicUs,
  };
}

/** `0000:3b:00` / `00000000:3B:00.0` → `0000:3b:00` (domain as 4 hex digits, bus, device); null if unreadable. */
export function normalizePciBusId(id: string | null | undefined): string | null {
  if (!id) return null;
  const m = /^([0-9a-f]{1,8}):([0-9a-f]{2}):([0-9a-f]{2})(?:\.[0-7])?$/i.exec(id.trim());
  if (!m) return null;
  const domain = Number.parseInt(m[1] ?? '0', 16)
    .toString(16)
    .padStart(4, '0');
  return `${domain}:${(m[2] ?? '').toLowerCase()}:${(m[3] ?? '').toLowerCase()}`;
}
