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
});
