import { countJobs, jobRows, matchesFilter, NO_FILTER } from '../jobview';
import { makeJob } from './fixtures';

describe('matchesFilter', () => {
  const job = makeJob({
    id: 'abc123',
    name: 'Train-ResNet',
    native_id: '4242',
    cluster: 'hpc',
    state: 'RUNNING'
  });

  it('filters by cluster and state', () => {
    expect(matchesFilter(job, { ...NO_FILTER, cluster: 'hpc' })).toBe(true);
    expect(matchesFilter(job, { ...NO_FILTER, cluster: 'other' })).toBe(false);
    expect(matchesFilter(job, { ...NO_FILTER, state: 'active' })).toBe(true);
    expect(matchesFilter(job, { ...NO_FILTER, state: 'finished' })).toBe(false);
    expect(matchesFilter(job, { ...NO_FILTER, state: 'RUNNING' })).toBe(true);
    expect(matchesFilter(job, { ...NO_FILTER, state: 'QUEUED' })).toBe(false);
  });

  it('searches name, id and scheduler id, ignoring case', () => {
    for (const search of ['resnet', 'ABC1', '4242', '  train ']) {
      expect(matchesFilter(job, { ...NO_FILTER, search })).toBe(true);
    }
    expect(matchesFilter(job, { ...NO_FILTER, search: 'bert' })).toBe(false);
  });
});

describe('jobRows', () => {
  const parent = makeJob({ id: 'p', name: 'sweep', state: 'RUNNING' });
  const tasks = ['10', '2', '1'].map(i =>
    makeJob({
      id: `t${i}`,
      name: 'sweep',
      parent_id: 'p',
      array_task: i,
      state: i === '2' ? 'FAILED' : 'RUNNING',
      terminal: i === '2'
    })
  );
  const other = makeJob({ id: 'o', name: 'other' });
  const jobs = [parent, ...tasks, other];

  it('puts array tasks under their parent, collapsed', () => {
    const rows = jobRows(jobs, NO_FILTER, new Set());
    expect(rows.map(r => [r.job.id, r.depth, r.childCount])).toEqual([
      ['p', 0, 3],
      ['o', 0, 0]
    ]);
  });

  it('lists tasks by index when the parent is expanded', () => {
    const rows = jobRows(jobs, NO_FILTER, new Set(['p']));
    expect(rows.map(r => r.job.id)).toEqual(['p', 't1', 't2', 't10', 'o']);
    expect(rows[1]).toMatchObject({ depth: 1, expanded: false });
    expect(rows[0].expanded).toBe(true);
  });

  it('shows a matching task on its own when its parent is filtered out', () => {
    const rows = jobRows(jobs, { ...NO_FILTER, state: 'FAILED' }, new Set());
    expect(rows.map(r => [r.job.id, r.depth])).toEqual([['t2', 0]]);
  });
});

describe('countJobs', () => {
  it('counts running, queued and held jobs', () => {
    expect(
      countJobs([
        makeJob({ id: 'a', state: 'RUNNING' }),
        makeJob({ id: 'b', state: 'COMPLETING' }),
        makeJob({ id: 'c', state: 'QUEUED' }),
        makeJob({ id: 'd', state: 'SUBMITTING' }),
        makeJob({ id: 'e', state: 'HELD' }),
        makeJob({ id: 'f', state: 'COMPLETED', terminal: true })
      ])
    ).toEqual({ running: 2, queued: 2, held: 1 });
  });
});
