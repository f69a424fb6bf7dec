import { describe, expect, it } from 'vitest';
import {
  parseBootTime,
  parseCgroup,
  parseCmdline,
  parseEnviron,
  parsePasswd,
  parseStatStartTicks,
  parseStatusUid,
  procFacts,
} from './procfs.ts';

describe('/proc parsers', () => {
  it('cmdline', () => {
    expect(parseCmdline(Buffer.from('python\0train.py\0--lr=0.1\0'))).toBe('python train.py --lr=0.1');
    expect(parseCmdline(Buffer.from(''))).toBeNull();
  });
  it('status Uid and passwd', () => {
    expect(parseStatusUid('Name:\tpython\nUid:\t1001\t1001\t1001\t1001\nGid:\t100\n')).toBe(1001);
    const users = parsePasswd(
      'root:x:0:0:root:/root:/bin/bash\nkim.minji:x:1001:100::/home/kim.minji:/bin/bash\n',
    );
    expect(users.get(1001)).toBe('kim.minji');
  });
  it('stat start time with a comm containing spaces and parens', () => {
    const stat = '1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 98765 1000 200';
    expect(parseStatStartTicks(stat)).toBe(98765);
    expect(parseBootTime('cpu 1 2 3\nbtime 1700000000\n')).toBe(1700000000);
  });
  it('cgroup: Slurm job, Kubernetes pod, container', () => {
    expect(parseCgroup('0::/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0\n').slurmJobId).toBe(
      '4242',
    );
    expect(parseCgroup('12:memory:/slurm/uid_1001/job_77/step_batch\n').slurmJobId).toBe('77');
    const k8s = parseCgroup(
      '0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f60_7182_93a4_b5c6d7e8f901.slice/cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n',
    );
    expect(k8s).toEqual({
      k8sPodUid: '1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901',
      k8sQosClass: 'burstable',
      containerId: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    });
    expect(parseCgroup('0::/user.slice/user-1000.slice/session-3.scope\n')).toEqual({});
  });
  it('environ keeps only chosen variables', () => {
    const env = parseEnviron(
      Buffer.from('PATH=/bin\0GPUPULSE_PROJECT=sh-medimg\0SLURM_JOB_ACCOUNT=fu_video\0SECRET=x\0'),
    );
    expect(env).toEqual({ GPUPULSE_PROJECT: 'sh-medimg', SLURM_JOB_ACCOUNT: 'fu_video' });
  });
  it('facts: unknown → null', () => {
    const f = procFacts({ cmdline: null, uid: 5, users: new Map(), startedAt: null, cgroup: {}, env: null });
    expect(f).toMatchObject({ uid: 5, user: null, slurmAccount: null, k8sNamespace: null });
    expect(f.env).toBeUndefined();
  });

  it.each([
    // Slurm cgroup v1 (task/cgroup, one hierarchy per controller)
    ['12:memory:/slurm/uid_1001/job_77/step_batch/task_0\n', { slurmJobId: '77' }],
    ['4:devices:/slurm/uid_0/job_123456/step_0\n', { slurmJobId: '123456' }],
    // Slurm cgroup v2 (slurmstepd.scope), also the per-node scope of multi-slurmd setups
    ['0::/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0\n', { slurmJobId: '4242' }],
    ['0::/system.slice/slurm_gpu07.scope/job_99/step_extern/user/task_special\n', { slurmJobId: '99' }],
    // newer Slurm: SLUID-named job directories
    [
      '0::/system.slice/slurmstepd.scope/job_sJ0K3ZQ8WH4R2/step_0/user/task_0\n',
      { slurmJobId: 'sJ0K3ZQ8WH4R2', slurmJobIsSluid: true },
    ],
    // Kubernetes, cgroupfs driver: pod<uid> and the container id as the leaf
    [
      '0::/kubepods/besteffort/pod0f8e4b1c-2a3d-4e5f-8a9b-0c1d2e3f4a5b/4f5c9d8e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d\n',
      {
        k8sPodUid: '0f8e4b1c-2a3d-4e5f-8a9b-0c1d2e3f4a5b',
        k8sQosClass: 'besteffort',
        containerId: '4f5c9d8e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d',
      },
    ],
    // Kubernetes guaranteed pod (no QoS level in the path), systemd driver, CRI-O
    [
      '0::/kubepods.slice/kubepods-pod6d1c2b3a_4e5f_4a7b_8c9d_0e1f2a3b4c5d.slice/crio-aa11bb22cc33dd44ee55ff66aa11bb22cc33dd44ee55ff66aa11bb22cc33dd44.scope\n',
      {
        k8sPodUid: '6d1c2b3a-4e5f-4a7b-8c9d-0e1f2a3b4c5d',
        k8sQosClass: 'guaranteed',
        containerId: 'aa11bb22cc33dd44ee55ff66aa11bb22cc33dd44ee55ff66aa11bb22cc33dd44',
      },
    ],
    // Docker: cgroupfs and systemd forms; podman
    [
      '12:pids:/docker/9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0\n',
      { containerId: '9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0' },
    ],
    [
      '0::/system.slice/docker-9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0.scope\n',
      { containerId: '9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0' },
    ],
    [
      '0::/machine.slice/libpod-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope/container\n',
      { containerId: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' },
    ],
    // a plain SSH session: nothing guessed
    ['0::/user.slice/user-1000.slice/session-3.scope\n', {}],
    ['0::/\n', {}],
  ])('cgroup form %#', (text, expected) => {
    expect(parseCgroup(text)).toEqual(expected);
  });

  it('facts: SLUID directory → the numeric SLURM_JOB_ID from environ when readable; project env configurable', () => {
    const f = procFacts({
      cmdline: 'python train.py',
      uid: 1001,
      users: new Map([[1001, 'kim.minji']]),
      startedAt: 1,
      cgroup: { slurmJobId: 'sJ0K3ZQ8WH4R2', slurmJobIsSluid: true },
      env: { SLURM_JOB_ID: '4242', SLURM_JOB_ACCOUNT: 'fu_video', MY_PROJECT: 'fu-video', PROJECT: 'x' },
      projectEnv: ['MY_PROJECT'],
    });
    expect(f).toMatchObject({
      slurmJobId: '4242',
      slurmAccount: 'fu_video',
      user: 'kim.minji',
      env: { MY_PROJECT: 'fu-video' },
    });
    const noEnv = procFacts({
      cmdline: null,
      uid: null,
      users: new Map(),
      startedAt: null,
      cgroup: { slurmJobId: 'sJ0K3ZQ8WH4R2', slurmJobIsSluid: true },
      env: null,
    });
    expect(noEnv).toMatchObject({ slurmJobId: 'sJ0K3ZQ8WH4R2', user: null, uid: null, cmdline: null });
  });
});
