import { Signal } from '@lumino/signaling';

import { JobsModel } from '../model';
import {
  describeJob,
  jobEndNotice,
  JobEndNotifier,
  type IJobNotice
} from '../notifier';
import { IEventEmission, JOB_STATE_SCHEMA } from '../types';
import { FakeAPI, makeJob } from './fixtures';

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
