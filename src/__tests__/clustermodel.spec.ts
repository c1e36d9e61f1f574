import { ClusterDetails } from '../clustermodel';
import {
  FakeAPI,
  makeCluster,
  makePartition,
  makeSchema,
  sleep
} from './fixtures';

describe('ClusterDetails', () => {
  let api: FakeAPI;
  let details: ClusterDetails;

  beforeEach(() => {
    api = new FakeAPI();
    const partitions = [makePartition({ name: 'cpu', default: true })];
    api.details.set('hpc', {
      ...makeCluster({ id: 'hpc' }),
      partitions,
      options_schema: makeSchema(partitions)
    });
    details = new ClusterDetails({ api, interval: 20 });
  });

  afterEach(() => details.dispose());

  it('loads a detail once and shares concurrent requests', async () => {
    const [a, b] = await Promise.all([
      details.fetch('hpc'),
      details.fetch('hpc')
    ]);
    expect(a).toBe(b);
    await details.fetch('hpc');
    expect(api.calls.details).toBe(1);
    expect(details.get('hpc')!.partitions[0].name).toBe('cpu');
  });

  it('records errors', async () => {
    await expect(details.fetch('nope')).rejects.toThrow(
      "unknown cluster 'nope'"
    );
    expect(details.error('nope')).toBe("unknown cluster 'nope'");
  });

  it('refreshes watched clusters until unwatched', async () => {
    const watch = details.watch('hpc');
    await sleep(70);
    expect(api.calls.details).toBeGreaterThanOrEqual(3);
    watch.dispose();
    await sleep(10);
    const calls = api.calls.details;
    await sleep(60);
    expect(api.calls.details).toBe(calls);
  });
});
