/**
 * Nudge texts in Korean and English: a subject, plain text and simple HTML (every value escaped).
 * Times are shown in the nudge time zone.
 */
import type { Language } from '../projects/projects-file.ts';

export interface NudgeFacts {
  /** Who is told: the holder of the GPU or the project lead. */
  audience: 'user' | 'lead';
  node: string;
  gpuIndex: number | null;
  user: string;
  project: string | null;
  projectName: string | null;
  process: string | null;
  idleSince: number;
  now: number;
  idleGpuHours: number;
  /** The project's idle-held GPU-hours today, when known. */
  projectIdleGpuHoursToday: number | null;
  /** The project's fair share this month, when one is agreed. */
  share: { agreedGpuHours: number; usedGpuHours: number; usedPercent: number | null } | null;
  timeZone: string;
  myWorkUrl: string;
  /** Owner only. */
  snoozeUrl: string | null;
  snoozeMs: number;
  linkValidForMs: number;
  /** Lead only: when the owner was told. */
  nudgedAt: number | null;
}

export interface RenderedMessage {
  subject: string;
  text: string;
  html: string;
  /** One line for chat (webhooks). */
  chat: string;
}

export function formatTime(t: number, lang: Language, timeZone: string): string {
  return new Intl.DateTimeFormat(lang === 'ko' ? 'ko-KR' : 'en-GB', {
    timeZone,
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false,
  }).format(new Date(t));
}

function span(ms: number, lang: Language): string {
  const min = Math.max(0, Math.round(ms / 60_000));
  const h = Math.floor(min / 60);
  const m = min % 60;
  if (lang === 'ko') return h > 0 ? `${h}시간${m > 0 ? ` ${m}분` : ''}` : `${m}분`;
  return h > 0 ? `${h} h${m > 0 ? ` ${m} min` : ''}` : `${m} min`;
}

const pct = (part: number, whole: number) => {
  const v = (part / whole) * 100;
  return `${v < 0.1 ? v.toFixed(2) : v.toFixed(1)} %`;
};

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderNudge(f: NudgeFacts, lang: Language): RenderedMessage {
  const gpu = `${f.node} / GPU ${f.gpuIndex ?? '?'}`;
  const since = formatTime(f.idleSince, lang, f.timeZone);
  const idleFor = span(f.now - f.idleSince, lang);
  const gh = f.idleGpuHours.toFixed(2);
  const project = f.projectName ?? f.project ?? (lang === 'ko' ? '(프로젝트 없음)' : '(no project)');
  const proc = f.process ?? '?';
  const lines: string[] = [];
  let subject: string;
  let chat: string;
  if (lang === 'ko') {
    if (f.audience === 'user') {
      subject = `[gpupulse] ${gpu}: GPU를 점유한 채 ${idleFor}째 사용하지 않고 있습니다`;
      lines.push(
        `${f.user}님, 안녕하세요.`,
        '',
        `${gpu}를 점유한 프로세스(${proc})가 ${since}부터 GPU를 거의 사용하지 않고 있습니다 (${idleFor}).`,
      );
      chat = `${f.user}님: ${gpu}에서 ${proc} 프로세스가 ${since}부터 GPU를 놀리고 있습니다 (유휴 ${gh} GPU시간).`;
    } else {
      subject = `[gpupulse] ${project}: ${f.user}님이 ${gpu}를 ${idleFor}째 놀리고 있습니다`;
      lines.push(
        `${project} 프로젝트 책임자님께,`,
        '',
        `${f.user}님의 프로세스(${proc})가 ${gpu}를 점유한 채 ${since}부터 사용하지 않고 있습니다 (${idleFor}).`,
        ...(f.nudgedAt !== null
          ? [`${formatTime(f.nudgedAt, lang, f.timeZone)}에 본인에게 알렸지만 아직 그대로입니다.`]
          : []),
      );
      chat = `${project}: ${f.user}님의 ${gpu}가 ${since}부터 유휴 상태입니다 (${gh} GPU시간). 책임자에게 알림.`;
    }
    lines.push(
      '',
      `프로젝트: ${project}`,
      `유휴 점유: 지금까지 ${gh} GPU시간`,
      ...(f.projectIdleGpuHoursToday !== null
        ? [`오늘 프로젝트 전체 유휴 점유: ${f.projectIdleGpuHoursToday.toFixed(2)} GPU시간`]
        : []),
      ...(f.share
        ? [
            `이번 달 프로젝트 배정량 ${f.share.agreedGpuHours.toFixed(0)} GPU시간의 ${pct(f.idleGpuHours, f.share.agreedGpuHours)}에 해당합니다 (프로젝트 사용량: ${f.share.usedGpuHours.toFixed(1)} GPU시간${f.share.usedPercent !== null ? `, ${f.share.usedPercent.toFixed(0)}%` : ''}).`,
          ]
        : []),
      '',
      `내 작업에서 보기: ${f.myWorkUrl}`,
      ...(f.snoozeUrl
        ? [
            `아직 사용 중입니다 (${span(f.snoozeMs, lang)} 동안 알림 끄기, 한 번만, ${span(f.linkValidForMs, lang)} 안에): ${f.snoozeUrl}`,
          ]
        : []),
      '',
      '작업이 끝났다면 프로세스를 종료해 다른 연구자가 GPU를 쓸 수 있게 해 주세요.',
      '— gpupulse',
    );
  } else {
    if (f.audience === 'user') {
      subject = `[gpupulse] ${gpu} has been held idle for ${idleFor}`;
      lines.push(
        `Hello ${f.user},`,
        '',
        `your process (${proc}) holds ${gpu} but has barely used it since ${since} (${idleFor}).`,
      );
      chat = `${f.user}: ${proc} holds ${gpu} idle since ${since} (${gh} idle GPU-hours).`;
    } else {
      subject = `[gpupulse] ${project}: ${f.user} has held ${gpu} idle for ${idleFor}`;
      lines.push(
        `To the lead of ${project},`,
        '',
        `a process of ${f.user} (${proc}) holds ${gpu} but has barely used it since ${since} (${idleFor}).`,
        ...(f.nudgedAt !== null
          ? [`${f.user} was told at ${formatTime(f.nudgedAt, lang, f.timeZone)}; nothing changed since.`]
          : []),
      );
      chat = `${project}: ${f.user} holds ${gpu} idle since ${since} (${gh} idle GPU-hours); project lead told.`;
    }
    lines.push(
      '',
      `Project: ${project}`,
      `Held idle so far: ${gh} GPU-hours`,
      ...(f.projectIdleGpuHoursToday !== null
        ? [`The project's idle-held GPU-hours today: ${f.projectIdleGpuHoursToday.toFixed(2)}`]
        : []),
      ...(f.share
        ? [
            `That is ${pct(f.idleGpuHours, f.share.agreedGpuHours)} of the project's ${f.share.agreedGpuHours.toFixed(0)} agreed GPU-hours this month (the project has used ${f.share.usedGpuHours.toFixed(1)}${f.share.usedPercent !== null ? `, ${f.share.usedPercent.toFixed(0)} %` : ''}).`,
          ]
        : []),
      '',
      `Open in My work: ${f.myWorkUrl}`,
      ...(f.snoozeUrl
        ? [
            `I'm still using it (quiets this for ${span(f.snoozeMs, lang)}; works once, within ${span(f.linkValidForMs, lang)}): ${f.snoozeUrl}`,
          ]
        : []),
      '',
      'If the work is done, please end the process so that others can use the GPU.',
      '— gpupulse',
    );
  }
  const text = lines.join('\n');
  // The HTML: the same lines, the two URLs as links.
  const html = `<!doctype html><html lang="${lang}"><body><div>${lines
    .map((l) => {
      if (l === '') return '<br>';
      for (const url of [f.myWorkUrl, f.snoozeUrl]) {
        if (url && l.endsWith(url)) {
          const label = l.slice(0, l.length - url.length).replace(/:\s*$/, '');
          return `<p><a href="${esc(url)}">${esc(label)}</a></p>`;
        }
      }
      return `<p>${esc(l)}</p>`;
    })
    .join('')}</div></body></html>`;
  return { subject, text, html, chat };
}

/** The snooze pages (answer to a click on the link). */
export function snoozePage(
  lang: Language,
  state:
    | { kind: 'confirm'; token: string; gpu: string; snoozeMs: number }
    | { kind: 'done'; gpu: string; until: string }
    | { kind: 'used' | 'expired' | 'invalid' },
): string {
  const ko = lang === 'ko';
  let title: string;
  let body: string;
  switch (state.kind) {
    case 'confirm':
      title = ko ? '아직 사용 중인가요?' : 'Still using it?';
      body = `<p>${esc(ko ? `${state.gpu} 알림을 ${span(state.snoozeMs, lang)} 동안 끕니다.` : `This quiets the nudges for ${state.gpu} for ${span(state.snoozeMs, lang)}.`)}</p>
<form method="post" action="/nudge/snooze"><input type="hidden" name="t" value="${esc(state.token)}"><button type="submit">${ko ? '아직 사용 중입니다' : "I'm still using it"}</button></form>`;
      break;
    case 'done':
      title = ko ? '알림을 껐습니다' : 'Nudges snoozed';
      body = `<p>${esc(ko ? `${state.gpu}: ${state.until}까지 알림을 보내지 않습니다.` : `${state.gpu}: no nudges until ${state.until}.`)}</p>`;
      break;
    case 'used':
      title = ko ? '이미 사용된 링크입니다' : 'This link was already used';
      body = `<p>${ko ? '이 링크는 한 번만 쓸 수 있습니다. 새 알림의 링크를 사용하세요.' : 'Each link works once. Use the link of a newer message.'}</p>`;
      break;
    case 'expired':
      title = ko ? '만료된 링크입니다' : 'This link has expired';
      body = `<p>${ko ? '새 알림의 링크를 사용하세요.' : 'Use the link of a newer message.'}</p>`;
      break;
    default:
      title = ko ? '올바르지 않은 링크입니다' : 'This link is not valid';
      body = `<p>${ko ? '링크가 잘렸거나 바뀌었습니다. 메일의 링크를 그대로 여세요.' : 'The link is cut short or changed. Open the link from the message as it is.'}</p>`;
  }
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,"><title>${esc(title)} · gpupulse</title></head><body><main><h1>${esc(title)}</h1>${body}<p><a href="/me">${ko ? '내 작업' : 'My work'}</a></p></main></body></html>`;
}
