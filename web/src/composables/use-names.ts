import { useI18n } from 'vue-i18n';
import { MISSING } from '../lib/format.ts';
import { useProjectsStore } from '../stores/projects.ts';

/** How a job string the server sends (`processJob`: Slurm job id, `namespace/pod-uid`, container id) reads. */
export interface JobLabel {
  text: string;
  /** The full id, for the tooltip. */
  title: string;
  kind: 'slurm' | 'pod' | 'container';
}

/** The server's job string, labelled: what it is, short enough for a cell, the full id in `title`. */
export function jobKind(job: string): JobLabel['kind'] {
  if (/^\d+([_+.]\d+)?$/.test(job)) return 'slurm';
  if (job.includes('/') || /^[0-9a-f]{8}-[0-9a-f]{4}-/.test(job)) return 'pod';
  return 'container';
}

/**
 * Names people know, the same on every view: project names from the projects file (never raw
 * ids), and jobs labelled by kind with the full id in the tooltip. The agent reports Slurm job
 * ids and pod UIDs, not Slurm job or pod names: a job reads "Slurm job 4812" or "pod ns/3f2a…".
 */
export function useNames() {
  const { t, locale } = useI18n();
  const projects = useProjectsStore();

  function projectName(id: string | null | undefined, none = t('gpu.noProject')): string {
    if (id === null || id === undefined) return none;
    return projects.nameOf(id, locale.value, t('gpu.unassigned'));
  }

  function jobLabel(job: string): JobLabel {
    const kind = jobKind(job);
    if (kind === 'slurm') return { kind, text: t('names.slurmJob', { id: job }), title: job };
    if (kind === 'pod') {
      const [ns, uid] = job.includes('/')
        ? [job.slice(0, job.indexOf('/')), job.slice(job.indexOf('/') + 1)]
        : ['', job];
      const short = uid.length > 8 ? `${uid.slice(0, 8)}…` : uid;
      return { kind, text: t('names.pod', { id: ns ? `${ns}/${short}` : short }), title: job };
    }
    return { kind, text: t('names.container', { id: job }), title: job };
  }

  function jobsText(jobs: readonly string[] | undefined): { text: string; title: string } {
    if (!jobs?.length) return { text: MISSING, title: '' };
    const labels = jobs.map(jobLabel);
    return { text: labels.map((l) => l.text).join(', '), title: labels.map((l) => l.title).join('\n') };
  }

  return { projectName, jobLabel, jobsText };
}
