import { JobsModel, type IJobStateChange } from '../model';
import { FakeAPI, makeCluster, makeJob } from './fixtures';

describe('JobsModel loading', () => {
  let api: FakeAPI;
  let model: JobsModel;

  beforeEach(() => {
    api = new FakeAPI();
    api.clusters = [makeCluster({ id: 'hpc' })];
    api.jobs = Array.from({ length: 25 }, (_, i) =>
      makeJob({
        id: `j${String(i).padStart(2, '0')}`,
        state: i < 3 ? 'RUNNING' : 'COMPLETED',
        terminal: i >= 3,
        submitted_at: new Date(Date.UTC(2025, 0, 1, 0, 60 - i)).toISOString()
      })
    );
    model = new JobsModel({ api, autoStart: false, pageSize: 10 });
  });

  afterEach(() => model.dispose());

  it('reads every page of a full load', async () => {
    await model.refresh();
    expect(model.jobs).toHaveLength(25);
    expect(api.queries).toEqual([
      { limit: 10 },
      { limit: 10, cursor: '10' },
      { limit: 10, cursor: '20' }
    ]);
  });

  it('stops at maxJobs', async () => {
    model.maxJobs = 15;
    await model.refresh();
    expect(model.jobs).toHaveLength(15);
    expect(api.queries[api.queries.length - 1]).toEqual({
      limit: 5,
      cursor: '10'
    });
  });

  it('does a full load first', async () => {
    await model.refreshLive();
    expect(model.jobs).toHaveLength(25);
    expect(api.queries[0]).toEqual({ limit: 10 });
  });

  it('polls only the newest page and the live jobs after a full load', async () => {
    await model.refresh();
    api.queries = [];
    api.jobs[0] = {
      ...api.jobs[0],
      state: 'QUEUED',
      updated_at: '2030-01-01T00:00:00Z'
    };
    await model.refreshLive();
    expect(api.queries).toEqual([
      { limit: JobsModel.NEWEST_PAGE },
      {
        state: [
          'SUBMITTING',
          'QUEUED',
          'HELD',
          'RUNNING',
          'SUSPENDED',
          'COMPLETING',
          'UNKNOWN'
        ],
        limit: 10
      }
    ]);
    expect(model.getJob('j00')!.state).toBe('QUEUED');
    expect(model.jobs).toHaveLength(25);
  });

  it('looks up a live job that left both lists and announces its end', async () => {
    model.dispose();
    model = new JobsModel({
      api,
      autoStart: false,
      pageSize: 10,
      newestPage: 1
    });
    await model.refresh();
    const changes: IJobStateChange[] = [];
    model.stateChanged.connect((_, change) => changes.push(change));
    // j02 ended, and the newest page (limit 1 here) no longer has it.
    api.jobs[2] = {
      ...api.jobs[2],
      state: 'COMPLETED',
      terminal: true,
      exit_code: 0,
      updated_at: '2030-01-01T00:00:00Z'
    };
    await model.refreshLive();
    expect(api.calls.job).toBe(1);
    expect(model.getJob('j02')).toMatchObject({
      state: 'COMPLETED',
      exit_code: 0
    });
    expect(changes.map(c => [c.job.id, c.previous.state, c.job.state])).toEqual(
      [['j02', 'RUNNING', 'COMPLETED']]
    );
  });

  it('drops a live job the server no longer knows', async () => {
    model.dispose();
    model = new JobsModel({
      api,
      autoStart: false,
      pageSize: 10,
      newestPage: 1
    });
    await model.refresh();
    api.jobs = api.jobs.filter(j => j.id !== 'j01');
    await model.refreshLive();
    expect(model.getJob('j01')).toBeUndefined();
  });

  it('takes records the server answered with, unless older', async () => {
    await model.refresh();
    const changes: IJobStateChange[] = [];
    model.stateChanged.connect((_, change) => changes.push(change));
    model.upsert({
      ...model.getJob('j00')!,
      state: 'CANCELLED',
      terminal: true,
      updated_at: '2030-01-01T00:00:00Z'
    });
    expect(model.getJob('j00')!.state).toBe('CANCELLED');
    model.upsert({
      ...model.getJob('j00')!,
      state: 'RUNNING',
      terminal: false,
      updated_at: '2029-01-01T00:00:00Z'
    });
    expect(model.getJob('j00')!.state).toBe('CANCELLED');
    expect(changes).toHaveLength(1);
    model.upsert(makeJob({ id: 'fresh' }));
    expect(model.getJob('fresh')).toBeDefined();
    expect(changes).toHaveLength(1);
  });

  it('fetches one job into the model', async () => {
    const job = await model.fetchJob('j05');
    expect(job.id).toBe('j05');
    expect(model.getJob('j05')).toBeDefined();
  });
});
