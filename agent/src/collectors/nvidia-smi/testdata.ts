// Reads the nvidia_gpu_exporter capture files in ./testdata (test helper; no runtime use).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TESTDATA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'testdata');

export interface CaptureSection {
  state: string;
  label: string;
  command: string;
  body: string;
}

export function captureFiles(): string[] {
  return readdirSync(TESTDATA_DIR).filter((f) => f.endsWith('.txt') && f.includes('__'));
}

/** `linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt` → { os, model, driver }. */
export function captureInfo(file: string): { os: string; model: string; driver: string } {
  const [os = '', model = '', driver = ''] = file.replace(/\.txt$/, '').split('__');
  return { os, model, driver };
}

export function readCapture(file: string): CaptureSection[] {
  const lines = readFileSync(join(TESTDATA_DIR, file), 'utf8').split('\n');
  const ruler = /^#{20,}$/;
  const out: CaptureSection[] = [];
  for (let i = 1; i < lines.length; i++) {
    const m = /^# (\w+) :: (.*)$/.exec(lines[i] ?? '');
    if (!m || !ruler.test(lines[i - 1] ?? '')) continue;
    let j = i + 1;
    let command = '';
    if ((lines[j] ?? '').startsWith('# $ ')) command = (lines[j++] ?? '').slice(4);
    if (ruler.test(lines[j] ?? '')) j++;
    const body: string[] = [];
    while (j < lines.length && !(ruler.test(lines[j] ?? '') && /^# \w+ :: /.test(lines[j + 1] ?? ''))) {
      body.push(lines[j] ?? '');
      j++;
    }
    out.push({ state: m[1] ?? '', label: m[2] ?? '', command, body: body.join('\n').trimEnd() });
  }
  return out;
}

export function section(sections: CaptureSection[], state: string, labelStart: string): CaptureSection {
  const s = sections.find((x) => x.state === state && x.label.startsWith(labelStart));
  if (!s) throw new Error(`no ${state} :: ${labelStart} section`);
  return s;
}
