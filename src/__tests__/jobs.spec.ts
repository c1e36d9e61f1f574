import {
  applyClusterEvent,
  applyJobEvent,
  clusterStatusClass,
  formatDuration,
  formatElapsed,
  isClusterStatusEvent,
  isJobStateEvent,
  mergeJobEvent,
  mergeJobSnapshot,
  sortJobs,
  formatTimeLeft,
  stateBadgeClass
} from '../jobs';
import {
  CLUSTER_STATUS_SCHEMA,
  ICluster,
  IClusterStatusEvent,
  IJob,
  IJobStateEvent,
  JOB_STATES,
  JOB_STATE_SCHEMA
} from '../types';
import { clusterStatusLabel } from '../components/clusterbrowser';
import { makeCluster, makeJob } from './fixtures';

function jobEvent(fields: Omit<IJobStateEvent, 'schema_id'>): IJobStateEvent {
  return { schema_id: JOB_STATE_SCHEMA, ...fields };
}

describe('event guards', () => {
  it('recognizes job state events by schema id and id', () => {
    expect(isJobStateEvent({ schema_id: JOB_STATE_SCHEMA, id: 'a' })).toBe(
      true
    );
    expect(isJobStateEvent({ schema_id: JOB_STATE_SCHEMA })).toBe(false);
    expect(isJobStateEvent({ schema_id: JOB_STATE_SCHEMA, id: '' })).toBe(
      false
    );
    expect(
      isJobStateEvent({
        schema_id:
          'https://events.jupyter.org/jupyter_server/contents_service/v1',
        id: 'a'
      })
    ).toBe(false);
  });

  it('recognizes cluster status events', () => {
    expect(
      isClusterStatusEvent({
        schema_id: CLUSTER_STATUS_SCHEMA,
        cluster: 'hpc',
        status: 'unreachable',
        message: 'ssh: timeout'
      })
    ).toBe(true);
    expect(
      isClusterStatusEvent({
        schema_id: CLUSTER_STATUS_SCHEMA,
        cluster: 'hpc',
        status: 'on fire'
      })
    ).toBe(false);
    expect(
      isClusterStatusEvent({ schema_id: JOB_STATE_SCHEMA, cluster: 'hpc' })
    ).toBe(false);
  });
});

describe('applyJobEvent', () => {
  it('inserts an unknown job', () => {
    const jobs = new Map<string, IJob>();
    const changed = applyJobEvent(
      jobs,
      jobEvent({
        id: 'j1',
        cluster: 'hpc',
        native_id: '42',
        name: 'train',
        state: 'QUEUED',
        terminal: false,
        updated_at: '2025-01-01T10:00:00Z'
      })
    );
    expect(changed).toBe(true);
    const job = jobs.get('j1')!;
    expect(job).toMatchObject({
      id: 'j1',
      cluster: 'hpc',
      native_id: '42',
      name: 'train',
      state: 'QUEUED',
      terminal: false,
      exit_code: null,
      resources: {}
    });
  });

  it('updates a known job field by field and keeps the rest', () => {
    const before = makeJob({ id: 'j1', state: 'QUEUED' });
    const jobs = new Map([[before.id, before]]);
    const changed = applyJobEvent(
      jobs,
      jobEvent({
        id: 'j1',
        state: 'RUNNING',
        raw_state: 'RUNNING',
        started_at: '2025-01-01T10:05:00Z',
        updated_at: '2025-01-01T10:05:00Z'
      })
    );
    expect(changed).toBe(true);
    const after = jobs.get('j1')!;
    expect(after).not.toBe(before);
    expect(before.state).toBe('QUEUED');
    expect(after.state).toBe('RUNNING');
    expect(after.started_at).toBe('2025-01-01T10:05:00Z');
    expect(after.name).toBe(before.name);
    expect(after.resources).toEqual(before.resources);
    expect(after.stdout_path).toBe(before.stdout_path);
  });

  it('applies explicit nulls but not missing fields', () => {
    const before = makeJob({ id: 'j1', reason: 'Priority', native_id: '7' });
    const jobs = new Map([[before.id, before]]);
    applyJobEvent(
      jobs,
      jobEvent({ id: 'j1', reason: null, updated_at: '2025-01-01T11:00:00Z' })
    );
    expect(jobs.get('j1')!.reason).toBeNull();
    expect(jobs.get('j1')!.native_id).toBe('7');
  });

  it('ignores an event older than the held job', () => {
    const before = makeJob({
      id: 'j1',
      state: 'COMPLETED',
      terminal: true,
      updated_at: '2025-01-01T12:00:00Z'
    });
    const jobs = new Map([[before.id, before]]);
    const changed = applyJobEvent(
      jobs,
      jobEvent({
        id: 'j1',
        state: 'RUNNING',
        terminal: false,
        updated_at: '2025-01-01T11:00:00Z'
      })
    );
    expect(changed).toBe(false);
    expect(jobs.get('j1')).toBe(before);
  });

  it('reports no change for a repeated event', () => {
    const jobs = new Map<string, IJob>();
    const event = jobEvent({
      id: 'j1',
      state: 'RUNNING',
      updated_at: '2025-01-01T10:00:00Z'
    });
    expect(applyJobEvent(jobs, event)).toBe(true);
    const held = jobs.get('j1');
    expect(applyJobEvent(jobs, event)).toBe(false);
    expect(jobs.get('j1')).toBe(held);
  });

  it('copies only job fields', () => {
    const event = {
      ...jobEvent({ id: 'j1', state: 'RUNNING' }),
      __timestamp__: '2025-01-01T10:00:00Z',
      secret: 'x'
    } as IJobStateEvent;
    const job = mergeJobEvent(undefined, event) as unknown as Record<
      string,
      unknown
    >;
    expect(job.schema_id).toBeUndefined();
    expect(job.__timestamp__).toBeUndefined();
    expect(job.secret).toBeUndefined();
  });

  it('maps an unknown state to UNKNOWN', () => {
    const job = mergeJobEvent(
      undefined,
      jobEvent({ id: 'j1', state: 'BOOT_FAIL' as IJob['state'] })
    );
    expect(job.state).toBe('UNKNOWN');
  });

  it('derives terminal from the state when the event omits it', () => {
    const running = makeJob({ id: 'j1', state: 'RUNNING' });
    const job = mergeJobEvent(running, jobEvent({ id: 'j1', state: 'FAILED' }));
    expect(job.terminal).toBe(true);
  });
});

describe('applyClusterEvent', () => {
  const event = (
    fields: Omit<IClusterStatusEvent, 'schema_id'>
  ): IClusterStatusEvent => ({ schema_id: CLUSTER_STATUS_SCHEMA, ...fields });

  it('updates the status and message of a known cluster', () => {
    const clusters = new Map<string, ICluster>([
      ['hpc', makeCluster({ id: 'hpc', name: 'Big HPC' })]
    ]);
    expect(
      applyClusterEvent(
        clusters,
        event({ cluster: 'hpc', status: 'unreachable', message: 'timeout' })
      )
    ).toBe(true);
    expect(clusters.get('hpc')).toMatchObject({
      name: 'Big HPC',
      kind: 'slurm',
      status: 'unreachable',
      status_message: 'timeout'
    });
    expect(
      applyClusterEvent(
        clusters,
        event({ cluster: 'hpc', status: 'unreachable', message: 'timeout' })
      )
    ).toBe(false);
  });

  it('inserts an unknown cluster', () => {
    const clusters = new Map<string, ICluster>();
    applyClusterEvent(clusters, event({ cluster: 'new', status: 'ok' }));
    expect(clusters.get('new')).toMatchObject({
      id: 'new',
      name: 'new',
      status: 'ok'
    });
  });
});

describe('mergeJobSnapshot', () => {
  it('replaces held jobs with loaded ones', () => {
    const held = new Map([
      ['a', makeJob({ id: 'a', state: 'QUEUED' })],
      ['gone', makeJob({ id: 'gone' })]
    ]);
    const next = mergeJobSnapshot(held, [
      makeJob({
        id: 'a',
        state: 'RUNNING',
        updated_at: '2025-01-01T10:01:00Z'
      })
    ]);
    expect([...next.keys()]).toEqual(['a']);
    expect(next.get('a')!.state).toBe('RUNNING');
  });

  it('keeps a held job newer than its loaded copy', () => {
    const newer = makeJob({
      id: 'a',
      state: 'COMPLETED',
      terminal: true,
      updated_at: '2025-01-01T10:10:00Z'
    });
    const next = mergeJobSnapshot(new Map([['a', newer]]), [
      makeJob({ id: 'a', state: 'RUNNING', updated_at: '2025-01-01T10:05:00Z' })
    ]);
    expect(next.get('a')).toBe(newer);
  });

  it('keeps jobs named in keep', () => {
    const fresh = makeJob({ id: 'fresh' });
    const next = mergeJobSnapshot(
      new Map([['fresh', fresh]]),
      [],
      new Set(['fresh'])
    );
    expect(next.get('fresh')).toBe(fresh);
  });
});

describe('sortJobs', () => {
  it('puts live jobs first, newest first, then by id', () => {
    const jobs = [
      makeJob({
        id: 'old-done',
        state: 'COMPLETED',
        terminal: true,
        submitted_at: '2025-01-01T08:00:00Z'
      }),
      makeJob({ id: 'old-live', submitted_at: '2025-01-01T09:00:00Z' }),
      makeJob({
        id: 'new-done',
        state: 'FAILED',
        terminal: true,
        submitted_at: '2025-01-01T11:00:00Z'
      }),
      makeJob({ id: 'new-live-b', submitted_at: '2025-01-01T10:00:00Z' }),
      makeJob({ id: 'new-live-a', submitted_at: '2025-01-01T10:00:00Z' }),
      makeJob({ id: 'no-time', submitted_at: null, updated_at: null })
    ];
    expect(sortJobs(jobs).map(j => j.id)).toEqual([
      'new-live-a',
      'new-live-b',
      'old-live',
      'no-time',
      'new-done',
      'old-done'
    ]);
  });

  it('does not modify its input', () => {
    const jobs = [makeJob({ id: 'b' }), makeJob({ id: 'a' })];
    sortJobs(jobs);
    expect(jobs.map(j => j.id)).toEqual(['b', 'a']);
  });
});

describe('stateBadgeClass', () => {
  it.each(JOB_STATES.map(s => [s]))('gives a class for %s', state => {
    expect(stateBadgeClass(state)).toBe(
      `jp-pwlab-state-${state.toLowerCase()}`
    );
  });

  it('lowercases multi-word states', () => {
    expect(stateBadgeClass('OUT_OF_MEMORY')).toBe(
      'jp-pwlab-state-out_of_memory'
    );
    expect(stateBadgeClass('running')).toBe('jp-pwlab-state-running');
  });

  it('never lets arbitrary text into a class name', () => {
    expect(stateBadgeClass('x y" onclick')).toBe('jp-pwlab-state-unknown');
    expect(stateBadgeClass('')).toBe('jp-pwlab-state-unknown');
  });
});

describe('clusterStatusClass', () => {
  it('gives a class per status', () => {
    expect(clusterStatusClass('ok')).toBe('jp-pwlab-cluster-ok');
    expect(clusterStatusClass('unreachable')).toBe(
      'jp-pwlab-cluster-unreachable'
    );
    expect(clusterStatusClass('weird')).toBe('jp-pwlab-cluster-error');
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [999, '0s'],
    [42_000, '42s'],
    [60_000, '1m 00s'],
    [185_000, '3m 05s'],
    [3_600_000, '1h 00m'],
    [7_380_000, '2h 03m'],
    [86_400_000 + 4 * 3_600_000, '1d 04h'],
    [-5_000, '0s']
  ])('formats %d ms as %s', (ms, label) => {
    expect(formatDuration(ms)).toBe(label);
  });
});

describe('formatElapsed', () => {
  const now = Date.parse('2025-01-01T10:10:00Z');

  it('is empty for a job that never started', () => {
    expect(formatElapsed(makeJob({ id: 'a', started_at: null }), now)).toBe('');
  });

  it('counts to now while running', () => {
    const job = makeJob({
      id: 'a',
      state: 'RUNNING',
      started_at: '2025-01-01T10:07:30Z'
    });
    expect(formatElapsed(job, now)).toBe('2m 30s');
  });

  it('counts to the end time once ended', () => {
    const job = makeJob({
      id: 'a',
      state: 'COMPLETED',
      terminal: true,
      started_at: '2025-01-01T09:00:00Z',
      ended_at: '2025-01-01T09:00:42Z'
    });
    expect(formatElapsed(job, now)).toBe('42s');
  });

  it('does not keep counting a finished job without an end time', () => {
    const job = makeJob({
      id: 'a',
      state: 'CANCELLED',
      terminal: true,
      started_at: '2025-01-01T09:00:00Z',
      ended_at: null,
      updated_at: '2025-01-01T09:01:00Z'
    });
    expect(formatElapsed(job, now)).toBe('1m 00s');
  });

  it('shows 0s when the browser clock is behind the server', () => {
    const job = makeJob({
      id: 'a',
      state: 'RUNNING',
      started_at: '2025-01-01T10:11:00Z'
    });
    expect(formatElapsed(job, now)).toBe('0s');
  });
});

describe('formatTimeLeft', () => {
  const start = Date.parse('2025-01-01T10:00:00Z');

  it('counts down the walltime of a running job', () => {
    const job = makeJob({
      id: 'r',
      state: 'RUNNING',
      started_at: '2025-01-01T10:00:00Z',
      resources: { time_limit_minutes: 90 }
    });
    expect(formatTimeLeft(job, start + 30 * 60_000)).toBe('1h 00m');
    expect(formatTimeLeft(job, start + 88 * 60_000 + 5000)).toBe('1m');
    expect(formatTimeLeft(job, start + 89 * 60_000 + 30_000)).toBe('30s');
    expect(formatTimeLeft(job, start + 100 * 60_000)).toBe('0s');
  });

  it('is empty without a limit, before the start and after the end', () => {
    expect(formatTimeLeft(makeJob({ id: 'q', started_at: null }), start)).toBe(
      ''
    );
    expect(
      formatTimeLeft(
        makeJob({ id: 'n', started_at: '2025-01-01T10:00:00Z', resources: {} }),
        start
      )
    ).toBe('');
    expect(
      formatTimeLeft(
        makeJob({
          id: 'd',
          terminal: true,
          state: 'COMPLETED',
          started_at: '2025-01-01T10:00:00Z',
          resources: { time_limit_minutes: 5 }
        }),
        start
      )
    ).toBe('');
  });
});

describe('credentials rejected', () => {
  it('has its own status class and label', () => {
    expect(clusterStatusClass('auth_rejected')).toBe(
      'jp-pwlab-cluster-auth_rejected'
    );
    const cluster = makeCluster({
      id: 'hpc',
      status: 'auth_rejected',
      status_message: 'token rejected: expired'
    });
    expect(clusterStatusLabel(cluster)).toBe('credentials rejected');
  });
});

describe('rate-limited', () => {
  it('says the extension slows down, with its own class', () => {
    expect(clusterStatusClass('rate_limited')).toBe(
      'jp-pwlab-cluster-rate_limited'
    );
    const cluster = makeCluster({
      id: 'hpc',
      status: 'rate_limited',
      status_message: "The scheduler of cluster 'hpc' is rate-limiting you"
    });
    expect(clusterStatusLabel(cluster)).toBe('rate-limited: slowing down');
  });
});

describe('clusters from a provider', () => {
  it('shows platform states and drops a removed cluster', () => {
    const clusters = new Map([
      ['pw-a', makeCluster({ id: 'pw-a', status: 'ok' })]
    ]);
    const starting = {
      schema_id: 'urn:parallelworks-lab:cluster-status',
      cluster: 'pw-a',
      status: 'starting',
      message: 'provisioning'
    };
    expect(isClusterStatusEvent(starting as any)).toBe(true);
    expect(applyClusterEvent(clusters, starting as any)).toBe(true);
    expect(clusterStatusLabel(clusters.get('pw-a')!)).toBe('starting');
    const removed = { ...starting, status: 'removed', message: null };
    expect(applyClusterEvent(clusters, removed as any)).toBe(true);
    expect(clusters.has('pw-a')).toBe(false);
  });
});
