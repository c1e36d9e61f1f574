import { Widget } from '@lumino/widgets';
import { Signal } from '@lumino/signaling';

import { JobsModel } from '../model';
import { JobsSidebar } from '../sidebar';
import {
  CLUSTER_STATUS_SCHEMA,
  IEventEmission,
  JOB_STATE_SCHEMA
} from '../types';
import { FakeAPI, makeCluster, makeJob, sleep } from './fixtures';

/**
 * Let lumino deliver the update request and React commit the render.
 */
async function rendered(widget: JobsSidebar): Promise<void> {
  await sleep(0);
  await widget.renderPromise;
  await sleep(0);
}

describe('JobsSidebar', () => {
  let model: JobsModel;
  let widget: JobsSidebar;
  let events: Signal<object, IEventEmission>;

  beforeEach(async () => {
    const api = new FakeAPI();
    api.clusters = [makeCluster({ id: 'hpc', name: 'Big HPC' })];
    api.jobs = [
      makeJob({
        id: 'j1',
        name: 'train',
        native_id: '4242',
        state: 'FAILED',
        terminal: true,
        exit_code: 2,
        reason: 'NonZeroExitCode'
      })
    ];
    events = new Signal({});
    model = new JobsModel({ api, events, autoStart: false });
    await model.refresh();
    widget = new JobsSidebar({ model });
    Widget.attach(widget, document.body);
    await rendered(widget);
  });

  afterEach(() => {
    widget.dispose();
    model.dispose();
  });

  it('has the sidebar id and class', () => {
    expect(widget.id).toBe('jp-pwlab-sidebar');
    expect(widget.node.classList).toContain('jp-pwlab-sidebar');
  });

  it('lists clusters', () => {
    const item = widget.node.querySelector('[data-cluster-id="hpc"]')!;
    expect(item.textContent).toContain('Big HPC');
    expect(item.textContent).toContain('slurm');
    expect(item.getAttribute('data-status')).toBe('ok');
  });

  it('shows why a cluster is not ok', async () => {
    events.emit({
      schema_id: CLUSTER_STATUS_SCHEMA,
      cluster: 'hpc',
      status: 'unreachable',
      message: 'ssh: connection refused'
    });
    await rendered(widget);
    const item = widget.node.querySelector('[data-cluster-id="hpc"]')!;
    expect(item.getAttribute('data-status')).toBe('unreachable');
    expect(item.querySelector('.jp-pwlab-cluster-unreachable')).not.toBeNull();
    expect(item.textContent).toContain('ssh: connection refused');
  });

  it('renders a job row with data attributes and a badge', () => {
    const row = widget.node.querySelector('[data-job-id="j1"]')!;
    expect(row.getAttribute('data-state')).toBe('FAILED');
    expect(row.querySelector('.jp-pwlab-state-failed')).not.toBeNull();
    expect(row.textContent).toContain('train');
    expect(row.textContent).toContain('Big HPC');
    expect(row.textContent).toContain('#4242');
    expect(row.textContent).toContain('NonZeroExitCode');
    expect(row.textContent).toContain('exit 2');
  });

  it('follows push events', async () => {
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: 'j2',
      cluster: 'hpc',
      name: 'fresh',
      state: 'RUNNING',
      terminal: false,
      started_at: new Date().toISOString(),
      updated_at: '2030-01-01T00:00:00Z'
    });
    await rendered(widget);
    const row = widget.node.querySelector('[data-job-id="j2"]')!;
    expect(row.getAttribute('data-state')).toBe('RUNNING');
    expect(row.querySelector('.jp-pwlab-state-running')).not.toBeNull();
    const rows = widget.node.querySelectorAll('.jp-pwlab-job');
    expect(Array.from(rows).map(r => r.getAttribute('data-job-id'))).toEqual([
      'j2',
      'j1'
    ]);
  });
});
