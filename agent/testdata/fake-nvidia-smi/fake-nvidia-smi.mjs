#!/usr/bin/env node
// A stand-in for `nvidia-smi` that replays real captures (nvidia_gpu_exporter format).
// Plain JavaScript, no dependencies. See README.md next to this file.
//
// Env:
//   FAKE_NVIDIA_SMI_CAPTURE  capture file name (in the agent's nvidia-smi testdata) or absolute path
//   FAKE_NVIDIA_SMI_STATE    idle | load (default load)
//   FAKE_NVIDIA_SMI_MODE     ok (default) | hang | fail | hang-after=N | die-after=N
//   FAKE_NVIDIA_SMI_GPUS     replicate the captured GPU row N times (index/uuid/bus id varied)
//   FAKE_NVIDIA_SMI_APPS     JSON array of {gpu_uuid?, pid, process_name, used_gpu_memory} for --query-compute-apps
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CAPTURE_DIR = resolve(here, '../../src/collectors/nvidia-smi/testdata');
const DEFAULT_CAPTURE = 'linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt';
const FAIL_MESSAGE = 'Unable to determine the device handle for GPU0000:01:00.0: Unknown Error';

const env = process.env;
const captureName = env.FAKE_NVIDIA_SMI_CAPTURE || DEFAULT_CAPTURE;
const capturePath = isAbsolute(captureName) ? captureName : join(CAPTURE_DIR, captureName);
const state = env.FAKE_NVIDIA_SMI_STATE || 'load';
const mode = env.FAKE_NVIDIA_SMI_MODE || 'ok';
const hangAfter = mode.startsWith('hang-after=') ? Number(mode.slice('hang-after='.length)) : null;
const dieAfter = mode.startsWith('die-after=') ? Number(mode.slice('die-after='.length)) : null;

const out = (s) => process.stdout.write(s);
const hangForever = () => setInterval(() => {}, 1 << 30);

function die(message, code) {
  process.stdout.write(`${message}\n`);
  process.exitCode = code;
}

/** Splits a capture into sections: { state, label, command, body }. */
function parseCapture(text) {
  const lines = text.split('\n');
  const sections = [];
  const ruler = /^#{20,}$/;
  for (let i = 0; i < lines.length; i++) {
    const m = /^# (\w+) :: (.*)$/.exec(lines[i] ?? '');
    if (!m || !ruler.test(lines[i - 1] ?? '')) continue;
    let j = i + 1;
    let command = '';
    if ((lines[j] ?? '').startsWith('# $ ')) command = (lines[j++] ?? '').slice(4);
    if (ruler.test(lines[j] ?? '')) j++;
    const body = [];
    while (j < lines.length && !(ruler.test(lines[j] ?? '') && /^# \w+ :: /.test(lines[j + 1] ?? ''))) {
      body.push(lines[j]);
      j++;
    }
    while (body.length && (body[body.length - 1] ?? '').trim() === '') body.pop();
    sections.push({ state: m[1], label: m[2], command, body: body.join('\n') });
  }
  return sections;
}

/** `"a" or "b"` lines of a --help-query-* text → alias → canonical name. */
function parseHelpAliases(helpText) {
  const aliases = new Map();
  for (const line of helpText.split('\n')) {
    if (!line.startsWith('"')) continue;
    const names = [...line.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
    const canonical = names[0];
    for (const n of names) if (!aliases.has(n)) aliases.set(n, canonical);
  }
  return aliases;
}

function parseCsv(body) {
  const lines = body.split('\n').filter((l) => l.trim() !== '');
  const header = (lines[0] ?? '').split(', ').map((h) => h.trim());
  const columns = header.map((h) => {
    const m = /^(.*?)(?: \[(.+)\])?$/.exec(h);
    return { name: m[1], unit: m[2] ?? null, header: h };
  });
  const rows = lines.slice(1).map((l) => l.split(', '));
  return { columns, rows };
}

function stripUnit(value, unit) {
  if (!unit || value.startsWith('[')) return value;
  const suffix = ` ${unit}`;
  return value.endsWith(suffix) ? value.slice(0, -suffix.length) : value;
}

function nowStamp() {
  const d = new Date();
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function parseArgs(argv) {
  const opts = { format: null, query: null, queryKind: null, loopMs: null, help: null, other: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a.startsWith('--query-gpu=')) {
      opts.queryKind = 'gpu';
      opts.query = a.slice('--query-gpu='.length);
    } else if (a.startsWith('--query-compute-apps=')) {
      opts.queryKind = 'apps';
      opts.query = a.slice('--query-compute-apps='.length);
    } else if (a.startsWith('--format=')) opts.format = a.slice('--format='.length);
    else if (a === '-lms') opts.loopMs = Number(next());
    else if (a.startsWith('--loop-ms=')) opts.loopMs = Number(a.slice('--loop-ms='.length));
    else if (a === '-l') opts.loopMs = Number(next()) * 1000;
    else if (a.startsWith('--loop=')) opts.loopMs = Number(a.slice('--loop='.length)) * 1000;
    else if (a === '--help-query-gpu' || a === '--help-query-compute-apps') opts.help = a;
    else opts.other.push(a);
  }
  return opts;
}

function main() {
  const argv = process.argv.slice(2);
  let text;
  try {
    text = readFileSync(capturePath, 'utf8');
  } catch (err) {
    process.stderr.write(`fake-nvidia-smi: cannot read capture ${capturePath}: ${err.message}\n`);
    process.exitCode = 99;
    return;
  }
  const sections = parseCapture(text);
  const find = (st, labelStart) =>
    sections.find((s) => s.state === st && s.label.startsWith(labelStart)) ?? null;
  const opts = parseArgs(argv);

  // Static help text works even with a broken driver.
  if (opts.help) {
    const s = find('capabilities', opts.help === '--help-query-gpu' ? 'help-query-gpu' : 'help-query-compute-apps');
    out(`${s ? s.body : ''}\n`);
    return;
  }
  if (mode === 'hang') return void hangForever();
  if (mode === 'fail') return die(FAIL_MESSAGE, 15);

  if (argv.includes('--version')) return void out(`${find('capabilities', 'version')?.body ?? ''}\n`);
  if (argv.includes('-L') || argv.includes('--list-gpus')) {
    return void out(`${find('capabilities', 'list (-L)')?.body ?? ''}\n`);
  }
  if (!opts.queryKind) {
    const table = find(state, 'nvidia-smi (default table)');
    return void out(`${table?.body ?? ''}\n`);
  }

  const format = new Set((opts.format ?? '').split(',').map((s) => s.trim()));
  if (!format.has('csv')) return die(`Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.`, 2);
  const noheader = format.has('noheader');
  const nounits = format.has('nounits');

  const help = find('capabilities', opts.queryKind === 'gpu' ? 'help-query-gpu' : 'help-query-compute-apps');
  const aliases = parseHelpAliases(help?.body ?? '');
  const data = find(state, opts.queryKind === 'gpu' ? 'query-gpu' : 'query-compute-apps');
  if (!data) return die(`fake-nvidia-smi: capture has no ${state} ${opts.queryKind} section`, 99);
  const { columns, rows } = parseCsv(data.body);

  const requested = opts.query.split(',').map((f) => f.trim());
  const picks = [];
  for (const field of requested) {
    const canonical = aliases.get(field) ?? field;
    let col = columns.findIndex((c) => c.name === canonical);
    if (col < 0) col = columns.findIndex((c) => c.name === field);
    if (col < 0) return die(`Field "${field}" is not a valid field to query.\n`, 2);
    picks.push(col);
  }

  let sourceRows = rows;
  const gpuRow = (parseCsv(find(state, 'query-gpu')?.body ?? '').rows[0] ?? []);
  const gpuCols = parseCsv(find(state, 'query-gpu')?.body ?? '').columns;
  const gpuValue = (name) => gpuRow[gpuCols.findIndex((c) => c.name === name)] ?? '[N/A]';

  if (opts.queryKind === 'gpu') {
    const n = Number(env.FAKE_NVIDIA_SMI_GPUS || 0);
    if (n > 0 && rows[0]) {
      const idx = columns.findIndex((c) => c.name === 'index');
      const uuid = columns.findIndex((c) => c.name === 'uuid');
      const bus = columns.findIndex((c) => c.name === 'pci.bus_id');
      sourceRows = [];
      for (let g = 0; g < n; g++) {
        const r = [...rows[0]];
        if (idx >= 0) r[idx] = String(g);
        if (uuid >= 0 && g > 0) r[uuid] = r[uuid].replace(/[0-9a-f]{4}$/i, g.toString(16).padStart(4, '0'));
        if (bus >= 0 && g > 0) r[bus] = r[bus].replace(/^([0-9A-F]{8}):[0-9A-F]{2}/i, (_, d) => `${d}:${(0x10 + g).toString(16).toUpperCase()}`);
        sourceRows.push(r);
      }
    }
  } else if (env.FAKE_NVIDIA_SMI_APPS) {
    let apps;
    try {
      apps = JSON.parse(env.FAKE_NVIDIA_SMI_APPS);
    } catch (err) {
      return die(`fake-nvidia-smi: FAKE_NVIDIA_SMI_APPS is not JSON: ${err.message}`, 99);
    }
    sourceRows = apps.map((a) =>
      columns.map((c) => {
        switch (c.name) {
          case 'timestamp':
            return nowStamp();
          case 'gpu_name':
            return gpuValue('name');
          case 'gpu_bus_id':
            return gpuValue('pci.bus_id');
          case 'gpu_serial':
            return gpuValue('serial');
          case 'gpu_uuid':
            return a.gpu_uuid ?? gpuValue('uuid');
          case 'pid':
            return String(a.pid);
          case 'process_name':
            return String(a.process_name ?? 'unknown');
          case 'used_gpu_memory':
            return a.used_gpu_memory == null ? '[N/A]' : `${a.used_gpu_memory} MiB`;
          default:
            return '[N/A]';
        }
      }),
    );
  }

  const tsCol = columns.findIndex((c) => c.name === 'timestamp');
  const headerLine = picks.map((c) => columns[c].header).join(', ');
  const renderRound = () => {
    const stamp = nowStamp();
    let s = '';
    for (const r of sourceRows) {
      s += `${picks.map((c) => (c === tsCol ? stamp : nounits ? stripUnit(r[c] ?? '', columns[c].unit) : (r[c] ?? ''))).join(', ')}\n`;
    }
    return s;
  };

  if (!noheader) out(`${headerLine}\n`);
  if (!opts.loopMs) return void out(renderRound());

  let rounds = 0;
  const tick = () => {
    if (hangAfter !== null && rounds >= hangAfter) return void hangForever();
    if (dieAfter !== null && rounds >= dieAfter) return die(FAIL_MESSAGE, 15);
    out(renderRound());
    rounds++;
    setTimeout(tick, opts.loopMs);
  };
  tick();
}

main();
