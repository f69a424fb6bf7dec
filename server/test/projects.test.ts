import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DASHBOARD_NAMESPACE,
  type ProjectsMeta,
  ProjectsMetaSchema,
  type ProjectsUsage,
  ProjectsUsageSchema,
} from '@gpupulse/protocol';
import { io } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { ProjectsFileError, parseProjectsFile } from '../src/projects/projects-file.ts';
import { ProjectsRegistry } from '../src/projects/projects-registry.ts';
import { startServerWithAccess } from './access-helpers.ts';
import { connectAgent, type DashboardClient, gpu, onCleanup, sample, tempDir, waitFor } from './helpers.ts';

const EXAMPLE = new URL('../../examples/projects.yaml', import.meta.url);

const GOOD = `institutions: [{ id: univ }]
projects:
  - id: alpha
    institution: univ
    match: { users: [alice] }
`;
const BAD = `institutions: [{ id: univ }]
projects:
  - id: alpha
    institution: univ
    match:
      users: [alice]
      shells: [zsh]
`;

describe('projects file', () => {
  it('the example file is valid: both institutions, four areas, several projects', () => {
    const c = parseProjectsFile(readFileSync(EXAMPLE, 'utf8'), 'projects.yaml');
    expect(c.meta.institutions).toHaveLength(2);
    expect(c.meta.areas).toHaveLength(4);
    expect(c.meta.projects.length).toBeGreaterThanOrEqual(7);
    expect(ProjectsMetaSchema.parse(c.meta)).toBeTruthy();
  });

  it.each([
    [BAD, 7, 'projects[0].match.shells: unknown key "shells"'],
    ['projects:\n  - id: a\n    quota: -1\n', 3, 'projects[0].quota: must be ≥ 0'],
    ['projects:\n  - id: a\n  - id: a\n', 3, 'projects[1].id: duplicate id "a"'],
    ['projects:\n  - id: a\n    area: nowhere\n', 3, 'projects[0].area: unknown area "nowhere"'],
    [
      'projects:\n  - id: a\n    match: { users: [bob] }\n  - id: b\n    match:\n      users: [bob]\n',
      6,
      'projects[1].match.users[0]: "bob" is already matched by project "a"',
    ],
    ['projects:\n  - id: unassigned\n', 2, 'projects[0].id: "unassigned" is reserved'],
    ['projects: [ {id: a}\n', 2, 'invalid YAML/JSON'],
    [
      '{"projects": [{"id": "a", "match": {"nodes": ["n/x"]}}]}',
      1,
      'projects[0].match.nodes[0]: must be "node" or "node/gpuIndex"',
    ],
  ])('a bad file names the line and key path (%#)', (text, line, message) => {
    let err: unknown;
    try {
      parseProjectsFile(text, 'p.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProjectsFileError);
    expect((err as ProjectsFileError).line).toBe(line);
    expect((err as Error).message).toContain(`p.yaml:${line}: ${message}`);
  });

  it('hot reload: a good change takes effect, a bad one keeps the last good config and reports why', async () => {
    const dir = await tempDir();
    const file = join(dir, 'projects.yaml');
    await writeFile(file, GOOD);
    const reg = new ProjectsRegistry({
      file,
      debounceMs: 20,
      pollMs: 0,
      readGroups: () => ({ groupsOf: () => [] }),
    });
    const changes: string[] = [];
    reg.onChange((c) => changes.push([...c.projects.keys()].join(',')));
    reg.start();
    try {
      expect([...reg.current.projects.keys()]).toEqual(['alpha']);
      await writeFile(file, `${GOOD}  - id: beta\n`);
      await waitFor(() => reg.current.projects.has('beta'), 3000, 'reload via fs.watch');
      await writeFile(file, BAD);
      await waitFor(() => reg.error, 3000, 'the bad reload');
      expect(reg.error).toMatch(/projects\.yaml:7: projects\[0\]\.match\.shells: unknown key "shells"/);
      expect([...reg.current.projects.keys()]).toEqual(['alpha', 'beta']);
      expect(reg.status()).toMatchObject({ projects: 2, error: expect.stringContaining(':7:') });
      // Fixed again: error cleared.
      await writeFile(file, GOOD);
      await waitFor(() => reg.error === null && !reg.current.projects.has('beta'), 3000, 'the fix');
    } finally {
      reg.close();
    }
    // The poll is the fallback when no watch event comes.
    await writeFile(file, `${GOOD}  - id: gamma\n`);
    expect(reg.reload()).toBe(true);
    expect(reg.current.projects.has('gamma')).toBe(true);
    expect(changes.length).toBeGreaterThanOrEqual(3);
  });

  it('the server attributes with the file, serves /api/v1/projects(/meta), pushes projects:meta and projects:usage, reports a bad reload', async () => {
    const dir = await tempDir();
    const file = join(dir, 'projects.json');
    await writeFile(
      file,
      JSON.stringify({ projects: [{ id: 'alpha', quota: 4, match: { users: ['alice'] } }] }),
    );
    // Anonymous viewers: the pushed usage carries user names (display would not).
    const server = await startServerWithAccess('viewer', {
      config: { projectsFile: file, projectsPollMs: 60_000 },
    });
    const socket: DashboardClient = io(server.url + DASHBOARD_NAMESPACE, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    onCleanup(() => {
      socket.disconnect();
    });
    const metas: ProjectsMeta[] = [];
    const usages: ProjectsUsage[] = [];
    socket.on('projects:meta', (m) => metas.push(m));
    socket.on('projects:usage', (u) => usages.push(u));
    await waitFor(() => metas.length > 0 && usages.length > 0, 3000, 'meta and usage on connect');
    expect(metas[0]!.projects.map((p) => p.id)).toEqual(['alpha']);

    const agent = await connectAgent(server, { node: 'gpu-01' });
    await agent.emitWithAck('samples:report', {
      samples: [
        sample(1, Date.now(), {
          gpus: [gpu(0), gpu(1)],
          processes: [{ gpuUuid: gpu(0).uuid, pid: 10, usedMemoryMiB: 100, name: 'python', user: 'alice' }],
        }),
      ],
    });
    server.tick();
    await waitFor(() => usages.some((u) => u.cluster.gpusInUse === 1), 3000, 'usage pushed');
    const pushed = ProjectsUsageSchema.parse(usages.at(-1));
    expect(pushed.projects.find((p) => p.project === 'alpha')).toMatchObject({
      gpusInUse: 1,
      users: ['alice'],
      quotaGpus: 4,
      overQuota: false,
    });

    const api = (await (await fetch(`${server.url}/api/v1/projects`)).json()) as ProjectsUsage;
    expect(ProjectsUsageSchema.parse(api).cluster).toMatchObject({ gpusTotal: 2, gpusInUse: 1, gpusFree: 1 });
    const fleet = (await (await fetch(`${server.url}/api/v1/fleet`)).json()) as {
      nodes: Array<{ gpus: Array<{ project: string | null }> }>;
    };
    expect(fleet.nodes[0]!.gpus.map((g) => g.project)).toEqual(['alpha', null]);

    // A bad reload: meta keeps the projects and says why, health too.
    await writeFile(file, '{"projects": [{"id": "alpha", "quota": "many"}]}');
    await waitFor(() => metas.some((m) => m.configError), 3000, 'projects:meta with configError');
    const meta = (await (await fetch(`${server.url}/api/v1/projects/meta`)).json()) as ProjectsMeta;
    expect(meta.projects.map((p) => p.id)).toEqual(['alpha']);
    expect(meta.configError).toMatch(/projects\.json:1: projects\[0\]\.quota: /);
    const health = (await (await fetch(`${server.url}/api/v1/health`)).json()) as {
      projects: { error: string };
    };
    expect(health.projects.error).toMatch(/quota/);
  });
});
