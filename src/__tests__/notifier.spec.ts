import { Signal } from '@lumino/signaling';

import { JobsModel } from '../model';
import {
  describeJob,
  jobEndNotice,
  JobEndNotifier,
  type IJobNotice
} from '../notifier';
import { IEventEmission, JOB_STATE_SCHEMA } from '../types';
import { FakeAPI, makeJob, sleep, until } from './fixtures';

describe('jobEndNotice', () => {
  const running = makeJob({
    id: 'j1',
    name: 'train',
    native_id: '17',
    cluster: 'hpc',
    state: 'RUNNING'
  });

  it('announces a job that ends, by how it ended', () => {
    const end = (fields: Partial<typeof running>) =>
      jobEndNotice({
        previous: running,
        job: { ...running, terminal: true, ...fields }
      });
    expect(end({ state: 'COMPLETED', exit_code: 0 })).toEqual({
      kind: 'success',
      message: 'Job "train" (#17 on hpc) completed',
      jobId: 'j1'
    });
    expect(
      end({ state: 'FAILED', exit_code: 2, reason: 'NonZeroExitCode' })
    ).toMatchObject({
      kind: 'error',
      message:
        'Job "train" (#17 on hpc) failed with exit code 2 (NonZeroExitCode)'
    });
    expect(end({ state: 'CANCELLED' })!.kind).toBe('info');
    expect(end({ state: 'TIMEOUT' })!.message).toContain('ended: timeout');
    expect(end({ state: 'PREEMPTED' })!.kind).toBe('warning');
  });

  it('says nothing about changes that are not an end', () => {
    expect(
      jobEndNotice({ previous: { ...running, state: 'QUEUED' }, job: running })
    ).toBeNull();
    const done = { ...running, state: 'COMPLETED' as const, terminal: true };
    expect(
      jobEndNotice({ previous: done, job: { ...done, state: 'FAILED' } })
    ).toBeNull();
  });

  it('describes a job without a scheduler id', () => {
    expect(
      describeJob(makeJob({ id: 'x', name: '', native_id: null, cluster: 'c' }))
    ).toBe('Job "x" (c)');
  });
});

describe('JobEndNotifier', () => {
  it('notifies when a live job ends, while enabled', async () => {
    const api = new FakeAPI();
    api.jobs = [
      makeJob({
        id: 'j1',
        state: 'RUNNING',
        updated_at: '2025-01-01T00:00:00Z'
      })
    ];
    const events = new Signal<object, IEventEmission>({});
    const model = new JobsModel({ api, events, autoStart: false });
    await model.refresh();
    const notices: IJobNotice[] = [];
    const notifier = new JobEndNotifier(model, notice => notices.push(notice));
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: 'j1',
      state: 'COMPLETED',
      terminal: true,
      exit_code: 0,
      updated_at: '2025-01-01T00:01:00Z'
    });
    expect(notices.map(n => n.kind)).toEqual(['success']);

    notifier.enabled = false;
    api.jobs = [makeJob({ id: 'j2', state: 'RUNNING' })];
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: 'j2',
      state: 'RUNNING',
      terminal: false
    });
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: 'j2',
      state: 'FAILED',
      terminal: true
    });
    expect(notices).toHaveLength(1);

    notifier.dispose();
    model.dispose();
  });
});

describe('what a job used, in its end notice', () => {
  const usage = {
    source: 'sacct',
    elapsed_seconds: 540,
    time_limit_seconds: 7200,
    cpus: 4,
    cpu_seconds: 712.8,
    cpu_efficiency: 0.33,
    max_memory_mb: 1228.8,
    requested_memory_mb: 10240,
    memory_efficiency: 0.12,
    gpus: 0,
    hints: [],
    summary: 'used 12% of its memory request (1.2 GiB of 10 GiB)'
  };
  const running = makeJob({
    id: 'j1',
    name: 'train',
    native_id: '17',
    cluster: 'hpc',
    state: 'RUNNING',
    started_at: '2025-01-01T00:00:00Z',
    updated_at: '2025-01-01T00:00:00Z'
  });

  it('appends the usage summary when present', () => {
    expect(
      jobEndNotice({
        previous: running,
        job: { ...running, state: 'COMPLETED', terminal: true, usage }
      })!.message
    ).toBe(
      'Job "train" (#17 on hpc) completed — used 12% of its memory request (1.2 GiB of 10 GiB)'
    );
    expect(
      jobEndNotice({
        previous: running,
        job: {
          ...running,
          state: 'TIMEOUT',
          terminal: true,
          reason: 'TimeLimit',
          usage: { ...usage, summary: 'ran into its 2 h time limit' }
        }
      })!.message
    ).toBe(
      'Job "train" (#17 on hpc) ended: timeout (TimeLimit) — ran into its 2 h time limit'
    );
  });

  async function setup(options: JobEndNotifier.IOptions) {
    const api = new FakeAPI();
    api.jobs = [running];
    const events = new Signal<object, IEventEmission>({});
    const model = new JobsModel({ api, events, autoStart: false });
    await model.refresh();
    const notices: IJobNotice[] = [];
    const updates: [string, IJobNotice][] = [];
    const notifier = new JobEndNotifier(
      model,
      notice => {
        notices.push(notice);
        return `notice-${notices.length}`;
      },
      { ...options, update: (id, notice) => updates.push([id, notice]) }
    );
    const end = (fields: Record<string, unknown> = {}) =>
      events.emit({
        schema_id: JOB_STATE_SCHEMA,
        id: 'j1',
        state: 'COMPLETED',
        terminal: true,
        exit_code: 0,
        updated_at: '2025-01-01T00:10:00Z',
        ...fields
      });
    const measured = () =>
      events.emit({
        schema_id: JOB_STATE_SCHEMA,
        id: 'j1',
        usage,
        updated_at: '2025-01-01T00:10:05Z'
      });
    const dispose = () => {
      notifier.dispose();
      model.dispose();
    };
    return { notices, updates, end, measured, dispose };
  }

  it('announces at once when the end event carries the usage', async () => {
    const t = await setup({ usageWait: 1000 });
    t.end({ usage });
    expect(t.notices.map(n => n.message)).toEqual([
      'Job "train" (#17 on hpc) completed — used 12% of its memory request (1.2 GiB of 10 GiB)'
    ]);
    t.dispose();
  });

  it('waits briefly for usage that comes in a later event', async () => {
    const t = await setup({ usageWait: 1000 });
    t.end();
    expect(t.notices).toEqual([]);
    await sleep(20);
    t.measured();
    expect(t.notices.map(n => n.message)).toEqual([
      'Job "train" (#17 on hpc) completed — used 12% of its memory request (1.2 GiB of 10 GiB)'
    ]);
    expect(t.updates).toEqual([]);
    t.dispose();
  });

  it('announces without usage after the wait, and updates the notice when it comes', async () => {
    const t = await setup({ usageWait: 30, usageWindow: 1000 });
    t.end();
    await until(() => t.notices.length > 0);
    expect(t.notices.map(n => n.message)).toEqual([
      'Job "train" (#17 on hpc) completed'
    ]);
    t.measured();
    expect(t.updates).toEqual([
      [
        'notice-1',
        expect.objectContaining({
          kind: 'success',
          message:
            'Job "train" (#17 on hpc) completed — used 12% of its memory request (1.2 GiB of 10 GiB)'
        })
      ]
    ]);
    expect(t.notices).toHaveLength(1);
    t.dispose();
  });

  it('stops watching after the window', async () => {
    const t = await setup({ usageWait: 10, usageWindow: 20 });
    t.end();
    await sleep(80);
    t.measured();
    expect(t.notices).toHaveLength(1);
    expect(t.updates).toEqual([]);
    t.dispose();
  });
});
