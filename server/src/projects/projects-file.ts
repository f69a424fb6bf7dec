/**
 * The projects file (`GPUPULSE_PROJECTS`): YAML or JSON (JSON is read by the same YAML 1.2 parser,
 * so errors carry a line number either way). Pure: text in, config or a located error out.
 */
import type { ProjectInfo, ProjectsMeta } from '@gpupulse/protocol';
import { z } from 'zod';
import { parseConfigDocument } from '../config-document.ts';

export const UNASSIGNED_PROJECT = 'unassigned';
/** Environment variables read (in this order) when a project file does not say otherwise. */
export const DEFAULT_PROJECT_ENV_VARS = ['GPUPULSE_PROJECT', 'PROJECT'];

const id = z
  .string()
  .min(1, 'must not be empty')
  .max(256, 'is longer than 256 characters')
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    'must be letters, digits, ".", "_" or "-" (starting with a letter or digit)',
  );
const value = z.string().min(1, 'must not be empty').max(256, 'is longer than 256 characters');
const values = z.array(value).default([]);
const localized = z.union([
  z
    .string()
    .min(1)
    .transform((s) => ({ en: s })),
  z.strictObject({ en: z.string().optional(), ko: z.string().optional() }),
]);
/** `node` or `node/gpuIndex`. */
const reservation = z
  .string()
  .min(1, 'must not be empty')
  .max(300)
  .regex(/^[^/]+(\/\d{1,4})?$/, 'must be "node" or "node/gpuIndex", e.g. gpu-01 or gpu-01/3');

const MatchSchema = z.strictObject({
  env: values,
  slurmAccounts: values,
  k8sNamespaces: values,
  users: values,
  groups: values,
  nodes: z.array(reservation).default([]),
});

const ProjectSchema = z.strictObject({
  id: id.refine((v) => v !== UNASSIGNED_PROJECT, `"${UNASSIGNED_PROJECT}" is reserved`),
  name: localized.optional(),
  institution: id.nullable().optional(),
  partner: id.nullable().optional(),
  area: id.nullable().optional(),
  color: z
    .string()
    .regex(/^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/, 'must be a colour like #4e79a7')
    .nullable()
    .optional(),
  owner: z.string().max(256).nullable().optional(),
  /** Who is told when a nudge escalates: a user name (see `users:` and `mail.template`) or an e-mail address. */
  lead: value.nullable().optional(),
  /** `false`: no nudges for GPUs of this project. */
  nudge: z.boolean().optional(),
  quota: z.number().nonnegative('must be ≥ 0').nullable().optional(),
  /** Agreed fair share (accounting/share.ts): GPU-hours per month or a percentage of the centre. */
  share: z
    .lazy(() => ShareSchema)
    .nullable()
    .optional(),
  match: MatchSchema.optional(),
});

const NamedSchema = z.strictObject({ id, name: localized.optional() });

export const LANGUAGES = ['ko', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];
const language = z.enum(LANGUAGES, { message: 'must be ko or en' });
const email = z
  .string()
  .max(254, 'is longer than 254 characters')
  .regex(/^[^\s@<>",;:()[\]\\]+@[^\s@<>",;:()[\]\\]+$/, 'must be an e-mail address like kim@example.ac.kr');

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** `500ms`, `30s`, `30m`, `2h`, `1d` (or a number of ms) → ms. */
const DURATION_MESSAGE = 'must be a duration like 30m, 2h, 45s or 500ms';
export const duration = z.preprocess(
  (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? `${v}ms` : v),
  z
    .string({ message: DURATION_MESSAGE })
    .regex(/^\d+(\.\d+)?(ms|s|m|h|d)$/, DURATION_MESSAGE)
    .transform((v) => {
      const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v)!;
      return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
    }),
);

/** `HH:MM-HH:MM` (may wrap past midnight) → minutes of the day. */
const quietHours = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/, 'must be like "22:00-08:00" (24-hour clock)')
  .transform((v) => {
    const [a, b] = v.split('-') as [string, string];
    const min = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));
    return { startMin: min(a), endMin: min(b) };
  })
  .refine((q) => q.startMin !== q.endMin, 'start and end must differ');

const timeZone = z
  .string()
  .min(1)
  .max(64)
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'is not a known IANA time zone (e.g. Asia/Seoul, UTC)');

const UserSchema = z.strictObject({
  email: email.optional(),
  language: language.optional(),
  /** Slack member id (e.g. U012AB3CD): nudges sent to Slack webhooks mention the user with it. */
  slack: z
    .string()
    .regex(/^[UW][A-Z0-9]{2,20}$/, 'must be a Slack member id like U012AB3CD')
    .optional(),
});

const MailSchema = z.strictObject({
  /** Address of a user not listed in `users:` (or listed without `email`), e.g. `{user}@example.ac.kr`. */
  template: z
    .string()
    .max(254)
    .refine((t) => t.includes('{user}'), 'must contain {user}, e.g. "{user}@example.ac.kr"')
    .refine((t) => email.safeParse(t.replace('{user}', 'user')).success, 'must make an e-mail address')
    .optional(),
  /** Language of users who do not say (default en). */
  defaultLanguage: language.optional(),
});

const NudgeSchema = z.strictObject({
  enabled: z.boolean().optional(),
  after: duration.optional(),
  snooze: duration.optional(),
  escalateAfter: duration.optional(),
  opsAfter: duration.optional(),
  quietHours: quietHours.nullable().optional(),
  timeZone: timeZone.optional(),
  dailyCapPerUser: z.number().int('must be a whole number').min(1, 'must be ≥ 1').max(1000).optional(),
  /** How long a "still using it" link works. */
  linkValidFor: duration.optional(),
  /** Also post nudges and escalations to the alert webhooks (with a Slack mention). */
  webhooks: z.boolean().optional(),
});

/** An agreed share: `{ gpuHoursPerMonth: 2000 }` or `{ percent: 25 }` (of the centre's GPU-hours). */
const ShareSchema = z.union([
  z.strictObject({ gpuHoursPerMonth: z.number().nonnegative('must be ≥ 0').max(1e9) }),
  z.strictObject({ percent: z.number().min(0, 'must be ≥ 0').max(100, 'must be ≤ 100') }),
]);

const InstitutionSchema = z.strictObject({
  id,
  name: localized.optional(),
  share: ShareSchema.nullable().optional(),
  /** Monthly report recipients (sent on the 1st for the last month). */
  reportTo: z.array(email).max(50).default([]),
  reportLanguage: language.optional(),
});

/** CO2e of the energy used: kWh × pue × gridGramsPerKWh. */
const CarbonSchema = z.strictObject({
  gridGramsPerKWh: z.number().min(0, 'must be ≥ 0').max(5000).optional(),
  pue: z.number().min(1, 'must be ≥ 1').max(5, 'must be ≤ 5').optional(),
});

export const ProjectsFileSchema = z.strictObject({
  /** Environment variable names whose value names a project (default GPUPULSE_PROJECT, PROJECT). */
  envVars: z.array(z.string().min(1).max(128)).optional(),
  institutions: z.array(InstitutionSchema).default([]),
  areas: z.array(NamedSchema).default([]),
  projects: z.array(ProjectSchema).default([]),
  /** Contacts by user name (the process owner's name as the agent reports it). */
  users: z.record(value, UserSchema).default({}),
  mail: MailSchema.optional(),
  nudge: NudgeSchema.optional(),
  carbon: CarbonSchema.optional(),
});
export type ProjectsFile = z.infer<typeof ProjectsFileSchema>;

export interface ProjectMatch {
  env: string[];
  slurmAccounts: string[];
  k8sNamespaces: string[];
  users: string[];
  groups: string[];
  nodes: string[];
}

/** Nudges of idle-held GPUs (server/README.md "Nudges"). Durations in ms. */
export interface NudgeSettings {
  enabled: boolean;
  /** Held but idle this long: the process owner is told. */
  afterMs: number;
  /** "I'm still using it" quiets the nudges of that GPU this long. */
  snoozeMs: number;
  /** Still idle this long after the owner's nudge was due: the project lead is told. */
  escalateAfterMs: number;
  /** … and this long after: ops get an alert through the webhooks. */
  opsAfterMs: number;
  /** People are not messaged between these minutes of the day (deferred, not dropped); null: never quiet. */
  quietHours: { startMin: number; endMin: number } | null;
  timeZone: string;
  /** Most nudges one user gets per day (in `timeZone`). */
  dailyCapPerUser: number;
  linkValidForMs: number;
  webhooks: boolean;
}

export const DEFAULT_NUDGE: NudgeSettings = {
  enabled: true,
  afterMs: 30 * 60_000,
  snoozeMs: 2 * 3_600_000,
  escalateAfterMs: 2 * 3_600_000,
  opsAfterMs: 4 * 3_600_000,
  quietHours: { startMin: 22 * 60, endMin: 8 * 60 },
  timeZone: 'Asia/Seoul',
  dailyCapPerUser: 3,
  linkValidForMs: 24 * 3_600_000,
  webhooks: true,
};

export interface UserContactEntry {
  email: string | null;
  language: Language | null;
  slack: string | null;
}

/** Where and how to reach a user. */
export interface UserContact {
  user: string;
  email: string | null;
  language: Language;
  slack: string | null;
}

export type ProjectEntry = ProjectInfo & {
  match: ProjectMatch;
  /** User name or e-mail address told when a nudge escalates; null: nobody. */
  lead: string | null;
  /** False: no nudges for this project's GPUs. */
  nudge: boolean;
};

export type AgreedShare = { gpuHoursPerMonth: number } | { percent: number };

/**
 * Korea's grid emission factor: 417.3 gCO2eq/kWh, the consumption-side electricity emission factor
 * (소비단 전력배출계수, 0.4173 tCO2eq/MWh) the Ministry of Climate, Energy and Environment published
 * on 2025-12-18 from the 2023 national GHG inventory (the previous one, 2020–2022 average, was
 * 0.4541). PUE 1.0: GPU board power only, set the centre's measured PUE.
 */
export const DEFAULT_CARBON = { gridGramsPerKWh: 417.3, pue: 1.0 } as const;

/** Shares, report recipients and the carbon factors (accounting/, reports/). */
export interface AccountingSettings {
  projectShares: Map<string, AgreedShare>;
  institutionShares: Map<string, AgreedShare>;
  reportTo: Map<string, { to: string[]; language: Language | null }>;
  carbon: { gridGramsPerKWh: number; pue: number };
}

export const EMPTY_ACCOUNTING: AccountingSettings = {
  projectShares: new Map(),
  institutionShares: new Map(),
  reportTo: new Map(),
  carbon: { ...DEFAULT_CARBON },
};

export interface ProjectsConfig {
  accounting: AccountingSettings;
  envVars: string[];
  meta: ProjectsMeta;
  /** By id, in file order. */
  projects: Map<string, ProjectEntry>;
  users: Map<string, UserContactEntry>;
  mail: { template: string | null; defaultLanguage: Language };
  nudge: NudgeSettings;
}

export const EMPTY_PROJECTS: ProjectsConfig = {
  accounting: EMPTY_ACCOUNTING,
  envVars: DEFAULT_PROJECT_ENV_VARS,
  meta: { projects: [], institutions: [], areas: [] },
  projects: new Map(),
  users: new Map(),
  mail: { template: null, defaultLanguage: 'en' },
  nudge: DEFAULT_NUDGE,
};

/**
 * A user's contact: `users:` first, then `mail.template`; a value with `@` is taken as the
 * address itself (a project lead given as an e-mail address).
 */
export function contactOf(config: ProjectsConfig, who: string): UserContact {
  const entry = config.users.get(who);
  const lang = entry?.language ?? config.mail.defaultLanguage;
  if (!entry && who.includes('@')) return { user: who, email: who, language: lang, slack: null };
  const templated =
    config.mail.template && /^[A-Za-z0-9._-]+$/.test(who)
      ? config.mail.template.replace('{user}', who)
      : null;
  return { user: who, email: entry?.email ?? templated, language: lang, slack: entry?.slack ?? null };
}

export class ProjectsFileError extends Error {
  constructor(
    message: string,
    readonly line: number | null = null,
  ) {
    super(message);
    this.name = 'ProjectsFileError';
  }
}

/**
 * Parses and validates a projects file. Throws `ProjectsFileError` whose message names the file,
 * the line and the key path, e.g. `projects.yaml:14: projects[2].match.users[0]: must not be empty`.
 */
export function parseProjectsFile(text: string, file = 'projects file'): ProjectsConfig {
  const {
    data: f,
    lineOf,
    fail,
  } = parseConfigDocument(
    text,
    file,
    ProjectsFileSchema,
    (message, line) => new ProjectsFileError(message, line),
  );
  const seen = (kind: string, list: Array<{ id: string }>) => {
    const ids = new Set<string>();
    list.forEach((item, i) => {
      if (ids.has(item.id)) fail(`${kind}[${i}].id: duplicate id "${item.id}"`, lineOf([kind, i, 'id']));
      ids.add(item.id);
    });
    return ids;
  };
  const institutions = seen('institutions', f.institutions);
  const areas = seen('areas', f.areas);
  seen('projects', f.projects);
  // Every match value belongs to one project: two projects claiming the same account would make
  // attribution depend on file order, which nobody reads.
  const claimed = new Map<string, string>();
  f.projects.forEach((p, i) => {
    for (const [ref, set, key] of [
      [p.institution, institutions, 'institution'],
      [p.partner, institutions, 'partner'],
      [p.area, areas, 'area'],
    ] as const) {
      if (ref && !set.has(ref)) {
        const known = [...set].map((s) => `"${s}"`).join(', ') || 'none defined';
        fail(
          `projects[${i}].${key}: unknown ${key === 'area' ? 'area' : 'institution'} "${ref}" (known: ${known})`,
          lineOf(['projects', i, key]),
        );
      }
    }
    const m = p.match;
    if (!m) return;
    for (const key of ['env', 'slurmAccounts', 'k8sNamespaces', 'users', 'groups', 'nodes'] as const) {
      m[key].forEach((v, j) => {
        const k = `${key}\u0000${v}`;
        const other = claimed.get(k);
        if (other !== undefined && other !== p.id)
          fail(
            `projects[${i}].match.${key}[${j}]: "${v}" is already matched by project "${other}"`,
            lineOf(['projects', i, 'match', key, j]),
          );
        claimed.set(k, p.id);
      });
    }
  });
  const nudgeIn = f.nudge ?? {};
  const nudge: NudgeSettings = {
    enabled: nudgeIn.enabled ?? DEFAULT_NUDGE.enabled,
    afterMs: nudgeIn.after ?? DEFAULT_NUDGE.afterMs,
    snoozeMs: nudgeIn.snooze ?? DEFAULT_NUDGE.snoozeMs,
    escalateAfterMs: nudgeIn.escalateAfter ?? DEFAULT_NUDGE.escalateAfterMs,
    opsAfterMs: nudgeIn.opsAfter ?? DEFAULT_NUDGE.opsAfterMs,
    quietHours: nudgeIn.quietHours === undefined ? DEFAULT_NUDGE.quietHours : nudgeIn.quietHours,
    timeZone: nudgeIn.timeZone ?? DEFAULT_NUDGE.timeZone,
    dailyCapPerUser: nudgeIn.dailyCapPerUser ?? DEFAULT_NUDGE.dailyCapPerUser,
    linkValidForMs: nudgeIn.linkValidFor ?? DEFAULT_NUDGE.linkValidForMs,
    webhooks: nudgeIn.webhooks ?? DEFAULT_NUDGE.webhooks,
  };
  if (nudge.snoozeMs <= 0) fail('nudge.snooze: must be longer than 0', lineOf(['nudge', 'snooze']));
  if (nudge.linkValidForMs <= 0)
    fail('nudge.linkValidFor: must be longer than 0', lineOf(['nudge', 'linkValidFor']));
  if (nudge.opsAfterMs < nudge.escalateAfterMs)
    fail('nudge.opsAfter: must not be shorter than nudge.escalateAfter', lineOf(['nudge', 'opsAfter']));
  const users = new Map<string, UserContactEntry>();
  for (const [name, u] of Object.entries(f.users)) {
    users.set(name, { email: u.email ?? null, language: u.language ?? null, slack: u.slack ?? null });
  }
  const mail = {
    template: f.mail?.template ?? null,
    defaultLanguage: f.mail?.defaultLanguage ?? 'en',
  } as const;
  f.projects.forEach((p, i) => {
    const lead = p.lead;
    if (!lead || lead.includes('@')) {
      if (lead && !email.safeParse(lead).success)
        fail(`projects[${i}].lead: "${lead}" is not an e-mail address`, lineOf(['projects', i, 'lead']));
      return;
    }
    if (!users.get(lead)?.email && !mail.template)
      fail(
        `projects[${i}].lead: "${lead}" has no e-mail address: add it under users: or set mail.template`,
        lineOf(['projects', i, 'lead']),
      );
  });
  const projects = new Map<string, ProjectEntry>();
  for (const p of f.projects) {
    projects.set(p.id, {
      id: p.id,
      name: p.name ?? { en: p.id },
      institution: p.institution ?? null,
      partner: p.partner ?? null,
      area: p.area ?? null,
      color: p.color ?? null,
      owner: p.owner ?? null,
      quotaGpus: p.quota ?? null,
      match: p.match ?? { env: [], slurmAccounts: [], k8sNamespaces: [], users: [], groups: [], nodes: [] },
      lead: p.lead ?? null,
      nudge: p.nudge ?? true,
    });
  }
  const accounting: AccountingSettings = {
    projectShares: new Map(f.projects.flatMap((p) => (p.share ? [[p.id, p.share] as const] : []))),
    institutionShares: new Map(f.institutions.flatMap((x) => (x.share ? [[x.id, x.share] as const] : []))),
    reportTo: new Map(
      f.institutions.map((x) => [x.id, { to: x.reportTo, language: x.reportLanguage ?? null }]),
    ),
    carbon: {
      gridGramsPerKWh: f.carbon?.gridGramsPerKWh ?? DEFAULT_CARBON.gridGramsPerKWh,
      pue: f.carbon?.pue ?? DEFAULT_CARBON.pue,
    },
  };
  return {
    accounting,
    envVars: f.envVars ?? DEFAULT_PROJECT_ENV_VARS,
    projects,
    users,
    mail,
    nudge,
    meta: {
      projects: [...projects.values()].map(({ match: _m, lead: _l, nudge: _n, ...info }) => info),
      institutions: f.institutions.map((x) => ({ id: x.id, name: x.name ?? { en: x.id } })),
      areas: f.areas.map((x) => ({ id: x.id, name: x.name ?? { en: x.id } })),
    },
  };
}
