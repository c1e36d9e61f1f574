import { Signal } from '@lumino/signaling';

import { JobsModel } from '../model';
import {
  CLUSTER_STATUS_SCHEMA,
  IEventEmission,
  JOB_STATE_SCHEMA
} from '../types';
import { FakeAPI, deferred, makeCluster, makeJob, sleep } from './fixtures';

describe('JobsModel', () => {
  let api: FakeAPI;
  let events: Signal<object, IEventEmission>;
  let model: JobsModel;
  const sender = {};

  beforeEach(() => {
    api = new FakeAPI();
    api.clusters = [
      makeCluster({ id: 'b', name: 'Beta' }),
      makeCluster({ id: 'a', name: 'Alpha', kind: 'local' })
    ];
    api.jobs = [
      makeJob({ id: 'j1', submitted_at: '2025-01-01T09:00:00Z' }),
      makeJob({ id: 'j2', submitted_at: '2025-01-01T10:00:00Z' })
    ];
    events = new Signal(sender);
    model = new JobsModel({ api, events, autoStart: false });
  });

  afterEach(() => {
    model.dispose();
  });

  it('loads clusters and jobs on refresh', async () => {
    let changes = 0;
    model.changed.connect(() => changes++);
    expect(model.loaded).toBe(false);
    await model.refresh();
    expect(model.loaded).toBe(true);
    expect(model.error).toBeNull();
    expect(model.clusters.map(c => c.name)).toEqual(['Alpha', 'Beta']);
    expect(model.jobs.map(j => j.id)).toEqual(['j2', 'j1']);
    expect(api.queries).toEqual([{ limit: JobsModel.PAGE_SIZE }]);
    expect(changes).toBeGreaterThan(0);
  });

  it('shares one request between concurrent refreshes', async () => {
    await Promise.all([model.refresh(), model.refresh()]);
    expect(api.calls).toMatchObject({ clusters: 1, jobs: 1 });
  });

  it('inserts a job from an event about an unknown job', async () => {
    await model.refresh();
    let changes = 0;
    model.changed.connect(() => changes++);
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: 'j3',
      cluster: 'a',
      native_id: '77',
      name: 'new',
      state: 'SUBMITTING',
      terminal: false,
      submitted_at: '2025-01-01T11:00:00Z',
      updated_at: '2025-01-01T11:00:00Z'
    });
    expect(changes).toBe(1);
    expect(model.jobs[0]).toMatchObject({ id: 'j3', state: 'SUBMITTING' });
  });

  it('updates a known job from an event', async () => {
    await model.refresh();
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: 'j1',
      state: 'FAILED',
      terminal: true,
      exit_code: 3,
      reason: 'NonZeroExitCode',
      updated_at: '2025-01-01T12:00:00Z'
    });
    const job = model.getJob('j1')!;
    expect(job).toMatchObject({
      state: 'FAILED',
      terminal: true,
      exit_code: 3,
      reason: 'NonZeroExitCode',
      stdout_path: '/home/u/job.out'
    });
    expect(model.jobs.map(j => j.id)).toEqual(['j2', 'j1']);
  });

  it('ignores events of other schemas', async () => {
    await model.refresh();
    let changes = 0;
    model.changed.connect(() => changes++);
    events.emit({
      schema_id:
        'https://events.jupyter.org/jupyter_server/contents_service/v1',
      id: 'j9',
      path: 'x.ipynb'
    });
    expect(changes).toBe(0);
    expect(model.getJob('j9')).toBeUndefined();
  });

  it('applies cluster status events', async () => {
    await model.refresh();
    events.emit({
      schema_id: CLUSTER_STATUS_SCHEMA,
      cluster: 'b',
      status: 'unreachable',
      message: 'ssh timed out'
    });
    expect(model.getCluster('b')).toMatchObject({
      status: 'unreachable',
      status_message: 'ssh timed out'
    });
    // The next load takes the server's word.
    await model.refresh();
    expect(model.getCluster('b')!.status).toBe('ok');
  });

  it('keeps an event that arrives while a load is in flight', async () => {
    const gate = deferred();
    api.gate = gate.promise;
    const loading = model.refresh();
    expect(model.loading).toBe(true);
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: 'j3',
      state: 'QUEUED',
      updated_at: '2025-01-01T11:00:00Z'
    });
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: 'j1',
      state: 'RUNNING',
      started_at: '2025-01-01T11:00:00Z',
      updated_at: '2025-01-01T11:00:00Z'
    });
    gate.resolve();
    await loading;
    expect(model.loading).toBe(false);
    expect(model.getJob('j3')).toBeDefined();
    expect(model.getJob('j1')!.state).toBe('RUNNING');
  });

  it('records a failed load and clears it after a good one', async () => {
    api.failWith = new Error('Service Unavailable');
    await expect(model.refresh()).resolves.toBeUndefined();
    expect(model.error).toBe('Service Unavailable');
    expect(model.loaded).toBe(true);
    api.failWith = null;
    await model.refresh();
    expect(model.error).toBeNull();
    expect(model.jobs).toHaveLength(2);
  });

  it('stops listening once disposed', async () => {
    await model.refresh();
    let changes = 0;
    model.changed.connect(() => changes++);
    model.dispose();
    expect(model.isDisposed).toBe(true);
    events.emit({ schema_id: JOB_STATE_SCHEMA, id: 'j5', state: 'QUEUED' });
    expect(changes).toBe(0);
    expect(model.getJob('j5')).toBeUndefined();
  });

  it('polls as a fallback and stops when disposed', async () => {
    const polled = new JobsModel({ api, pollInterval: 20 });
    try {
      await sleep(110);
      expect(api.calls.jobs).toBeGreaterThanOrEqual(2);
      expect(polled.jobs).toHaveLength(2);
    } finally {
      polled.dispose();
    }
    const calls = api.calls.jobs;
    await sleep(80);
    expect(api.calls.jobs).toBe(calls);
  });

  it('changes the poll interval', () => {
    expect(model.pollInterval).toBe(JobsModel.DEFAULT_POLL_INTERVAL);
    model.pollInterval = 30_000;
    expect(model.pollInterval).toBe(30_000);
    model.pollInterval = 0;
    expect(model.pollInterval).toBe(30_000);
  });
});
