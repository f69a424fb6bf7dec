/**
 * The report as a self-contained HTML document (print stylesheet, A4) in Korean or English: the
 * PDF (headless Chromium prints it) and the e-mail body. No script, no external resource; every
 * value is escaped. The web page `/reports/:period` draws the same figures interactively.
 */
import type { Localized, Report, ReportTotals } from '@gpupulse/protocol';
import type { ProjectsConfig } from '../projects/projects-file.ts';

export type ReportLang = 'ko' | 'en';

const T = {
  en: {
    title: 'GPU usage report',
    centre: 'Whole centre',
    period: 'Period',
    generated: 'Generated',
    partial: 'period in progress: figures up to the time generated',
    summary: 'Summary',
    busy: 'Busy GPU-hours',
    idle: 'Idle-held GPU-hours',
    used: 'GPU-hours used',
    busyPct: 'Busy share',
    energy: 'Energy (kWh)',
    co2: 'CO₂e (kg)',
    idleEnergy: 'Energy spent holding idle GPUs',
    share: 'Share vs agreed',
    agreed: 'Agreed GPU-hours',
    left: 'Left',
    over: 'over share',
    ok: 'within share',
    noShare: 'no share agreed',
    institutions: 'Institutions',
    institution: 'Institution',
    projects: 'Top projects',
    project: 'Project',
    trend: 'Utilization trend (per day)',
    day: 'Day',
    previous: 'Previous period',
    nudges: 'Nudges',
    noNudges: 'no nudge data',
    sent: 'sent',
    snoozed: 'snoozed',
    escalated: 'escalated',
    idleBefore: 'idle minutes before / after a nudge',
    carbon: (g: number, pue: number) =>
      `CO₂e = kWh × PUE ${pue} × ${g} g/kWh (Korea, consumption-side grid emission factor). MIG instances count as their fraction of the GPU.`,
  },
  ko: {
    title: 'GPU 사용 보고서',
    centre: '센터 전체',
    period: '기간',
    generated: '작성 시각',
    partial: '진행 중인 기간: 작성 시각까지의 수치',
    summary: '요약',
    busy: '사용 GPU-시간',
    idle: '유휴 점유 GPU-시간',
    used: '총 점유 GPU-시간',
    busyPct: '실사용 비율',
    energy: '전력량 (kWh)',
    co2: '탄소배출 CO₂e (kg)',
    idleEnergy: '유휴 GPU 점유에 쓴 전력',
    share: '배분 대비 사용',
    agreed: '배분 GPU-시간',
    left: '남은 시간',
    over: '배분 초과',
    ok: '배분 이내',
    noShare: '배분 없음',
    institutions: '기관',
    institution: '기관',
    projects: '상위 과제',
    project: '과제',
    trend: '일별 사용 추이',
    day: '날짜',
    previous: '이전 기간',
    nudges: '유휴 알림',
    noNudges: '알림 자료 없음',
    sent: '발송',
    snoozed: '연기',
    escalated: '상향 통보',
    idleBefore: '알림 전 / 후 유휴 시간(분)',
    carbon: (g: number, pue: number) =>
      `CO₂e = kWh × PUE ${pue} × ${g} g/kWh (국가 소비단 전력배출계수). MIG 인스턴스는 GPU 연산 슬라이스 비율로 계산합니다.`,
  },
} as const;

export const reportTitle = (lang: ReportLang) => T[lang].title;

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const name = (n: Localized | undefined, id: string, lang: ReportLang) =>
  n ? (n[lang] ?? n.en ?? n.ko ?? id) : id;

function fmt(v: number | null, lang: ReportLang, digits?: number): string {
  if (v === null) return '–';
  const a = Math.abs(v);
  return v.toLocaleString(lang === 'ko' ? 'ko-KR' : 'en-GB', {
    maximumFractionDigits: digits ?? (a === 0 || a >= 100 ? 1 : a >= 1 ? 2 : 3),
    minimumFractionDigits: 0,
  });
}

function dateText(t: number, lang: ReportLang, withTime = false): string {
  return new Date(t).toLocaleString(lang === 'ko' ? 'ko-KR' : 'en-GB', {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    ...(withTime ? { hour: '2-digit', minute: '2-digit' } : {}),
  });
}

/** Names of institutions and projects for a report (from the projects file). */
export function scopeName(report: Report, config: ProjectsConfig, lang: ReportLang): string {
  if (report.institution === null) return T[lang].centre;
  const i = config.meta.institutions.find((x) => x.id === report.institution);
  return name(i?.name, report.institution, lang);
}

export function renderReportHtml(report: Report, config: ProjectsConfig, lang: ReportLang): string {
  const t = T[lang];
  const inst = (id: string | null) =>
    id === null ? '–' : name(config.meta.institutions.find((x) => x.id === id)?.name, id, lang);
  const proj = (id: string) => name(config.projects.get(id)?.name, id, lang);
  const shareCell = (s: Report['share']) =>
    s.agreedGpuHours === null
      ? `<span class="muted">${t.noShare}</span>`
      : `${fmt(s.usedGpuHours, lang)} / ${fmt(s.agreedGpuHours, lang)} (${fmt(s.usedPercent, lang)} %)` +
        (s.overShare ? ` <strong class="over">${t.over}</strong>` : ` <span class="ok">${t.ok}</span>`);
  const totalsRow = (label: string, x: ReportTotals, extra = '') =>
    `<tr><th scope="row">${esc(label)}</th><td>${fmt(x.busyGpuHours, lang)}</td><td>${fmt(x.idleHeldGpuHours, lang)}</td><td>${fmt(x.energyKWh, lang)}</td><td>${fmt(x.co2eKg, lang)}</td>${extra}</tr>`;
  const head = (first: string, extra = '') =>
    `<tr><th scope="col">${esc(first)}</th><th scope="col">${t.busy}</th><th scope="col">${t.idle}</th><th scope="col">${t.energy}</th><th scope="col">${t.co2}</th>${extra}</tr>`;
  const maxDay = Math.max(1e-9, ...report.trend.map((d) => d.totals.gpuHours));
  const scope = scopeName(report, config, lang);
  const title = `${t.title} · ${scope} · ${report.period}`;
  const n = report.nudges;
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans KR", "Nanum Gothic", "NanumGothic", "NanumSquareRound", "Apple SD Gothic Neo", "Malgun Gothic", sans-serif; color: #111; font-size: 10.5pt; margin: 0; }
h1 { font-size: 18pt; margin: 0 0 2mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; border-bottom: 0.4mm solid #333; padding-bottom: 1mm; }
table { width: 100%; border-collapse: collapse; page-break-inside: auto; }
tr { page-break-inside: avoid; }
th, td { text-align: right; padding: 1mm 1.5mm; border-bottom: 0.2mm solid #ccc; font-variant-numeric: tabular-nums; }
th:first-child, td:first-child { text-align: left; white-space: nowrap; }
td:last-child { white-space: nowrap; }
thead th { font-size: 8.5pt; font-weight: 600; vertical-align: bottom; }
.muted { color: #666; } .over { color: #b00020; } .ok { color: #1b5e20; }
.kpis { display: grid; grid-template-columns: repeat(4, 1fr); gap: 2mm; }
.kpi { border: 0.3mm solid #999; border-radius: 1.5mm; padding: 2mm; }
.kpi b { display: block; font-size: 14pt; }
.bar { display: inline-block; height: 3mm; background: #4e79a7; vertical-align: middle; }
.bar.idle { background: #e15759; }
.foot { margin-top: 6mm; font-size: 8.5pt; color: #555; }
</style></head>
<body data-period="${esc(report.period)}" data-lang="${lang}">
<h1>${esc(t.title)}</h1>
<div>${esc(scope)} · ${t.period} ${esc(report.period)} (${esc(dateText(report.from, lang))} – ${esc(dateText(report.to - 1, lang))})</div>
<div class="muted">${t.generated} ${esc(dateText(report.generatedAt, lang, true))}${report.complete ? '' : ` · ${t.partial}`}</div>
<h2>${t.summary}</h2>
<div class="kpis">
<div class="kpi">${t.busy}<b>${fmt(report.totals.busyGpuHours, lang)}</b></div>
<div class="kpi">${t.idle}<b>${fmt(report.totals.idleHeldGpuHours, lang)}</b></div>
<div class="kpi">${t.energy}<b>${fmt(report.totals.energyKWh, lang)}</b></div>
<div class="kpi">${t.co2}<b>${fmt(report.totals.co2eKg, lang)}</b></div>
</div>
<p>${t.idleEnergy}: <b>${fmt(report.totals.idleHeldEnergyKWh, lang)} kWh</b> (${fmt(report.totals.idleHeldCo2eKg, lang)} kg CO₂e) · ${t.busyPct}: ${fmt(report.totals.busyPercent, lang)} %</p>
<p>${t.share}: ${shareCell(report.share)}</p>
<h2>${t.institutions}</h2>
<table><thead>${head(t.institution, `<th scope="col">${t.share}</th>`)}</thead><tbody>
${report.institutions.map((i) => totalsRow(inst(i.institution), i.totals, `<td>${shareCell(i.share)}</td>`)).join('\n')}
</tbody></table>
<h2>${t.projects}</h2>
<table><thead>${head(t.project, `<th scope="col">${t.share}</th>`)}</thead><tbody>
${report.projects
  .slice(0, 15)
  .map((p) => totalsRow(proj(p.project), p.totals, `<td>${shareCell(p.share)}</td>`))
  .join('\n')}
</tbody></table>
<h2>${t.trend}</h2>
<table><thead><tr><th scope="col">${t.day}</th><th scope="col">${t.busy}</th><th scope="col">${t.idle}</th><th scope="col">${t.busyPct}</th><th scope="col"></th></tr></thead><tbody>
${report.trend
  .map(
    (d) =>
      `<tr><td>${esc(dateText(d.start, lang))}</td><td>${fmt(d.totals.busyGpuHours, lang)}</td><td>${fmt(d.totals.idleHeldGpuHours, lang)}</td><td>${fmt(d.totals.busyPercent, lang)} %</td><td><span class="bar" style="width:${((d.totals.busyGpuHours / maxDay) * 40).toFixed(1)}mm"></span><span class="bar idle" style="width:${((d.totals.idleHeldGpuHours / maxDay) * 40).toFixed(1)}mm"></span></td></tr>`,
  )
  .join('\n')}
</tbody></table>
<h2>${t.previous} (${esc(report.previous.period)})</h2>
<table><thead>${head(t.period)}</thead><tbody>
${totalsRow(report.period, report.totals)}
${totalsRow(report.previous.period, report.previous.totals)}
</tbody></table>
<h2>${t.nudges}</h2>
<p>${
    n.available
      ? `${t.sent} ${fmt(n.sent, lang, 0)} · ${t.snoozed} ${fmt(n.snoozed, lang, 0)} · ${t.escalated} ${fmt(n.escalated, lang, 0)} · ${t.idleBefore}: ${fmt(n.idleMinutesBefore, lang)} / ${fmt(n.idleMinutesAfter, lang)}`
      : `<span class="muted">${t.noNudges}</span>`
  }</p>
<p class="foot">${esc(t.carbon(report.carbon.gridGramsPerKWh, report.carbon.pue))}</p>
</body></html>
`;
}
