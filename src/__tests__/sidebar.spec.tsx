import { Widget } from '@lumino/widgets';
import { Signal } from '@lumino/signaling';

import { ClusterDetails } from '../clustermodel';
import { JobsSidebar } from '../components/sidebar';
import { JobsModel } from '../model';
import {
  CLUSTER_STATUS_SCHEMA,
  IEventEmission,
  JOB_STATE_SCHEMA
} from '../types';
import {
  FakeAPI,
  makeCluster,
  makeJob,
  makePartition,
  makeSchema,
  sleep
} from './fixtures';
import { change, click, keyDown } from './dom';

/**
 * Let lumino deliver the update request and React commit the render.
 */
async function rendered(widget: JobsSidebar): Promise<void> {
  await sleep(0);
  await widget.renderPromise;
  await sleep(0);
}

describe('JobsSidebar', () => {
  let api: FakeAPI;
  let model: JobsModel;
  let details: ClusterDetails;
  let widget: JobsSidebar;
  let events: Signal<object, IEventEmission>;
  let opened: string[];
  let newJobs: [string | undefined, string | undefined][];

  beforeEach(async () => {
    api = new FakeAPI();
    api.clusters = [makeCluster({ id: 'hpc', name: 'Big HPC' })];
    const partitions = [
      makePartition({ name: 'cpu', default: true }),
      makePartition({
        name: 'gpu',
        gpus_per_node: 4,
        gpu_types: ['a100'],
        nodes_idle: 1,
        accounts: ['physics', 'chem'],
        qos: ['normal']
      })
    ];
    api.details.set('hpc', {
      ...api.clusters[0],
      partitions,
      options_schema: makeSchema(partitions)
    });
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
    details = new ClusterDetails({ api });
    await model.refresh();
    opened = [];
    newJobs = [];
    widget = new JobsSidebar({
      model,
      details,
      onOpenJob: id => opened.push(id),
      onNewJob: (cluster, partition) => newJobs.push([cluster, partition])
    });
    Widget.attach(widget, document.body);
    await rendered(widget);
  });

  afterEach(() => {
    widget.dispose();
    model.dispose();
    details.dispose();
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

  it('expands a cluster into its partitions with availability', async () => {
    const toggle = widget.node.querySelector<HTMLButtonElement>(
      '[data-cluster-id="hpc"] .jp-pwlab-cluster-toggle'
    )!;
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    click(toggle);
    await sleep(10);
    await rendered(widget);
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    const gpu = widget.node.querySelector('[data-partition="gpu"]')!;
    expect(gpu.textContent).toContain('1/4 nodes idle');
    expect(gpu.textContent).toContain('4 GPUs/node (a100)');
    expect(gpu.textContent).toContain('max 1 h');
    expect(gpu.querySelector('.jp-pwlab-partition-access')!.textContent).toBe(
      'accounts physics, chem · QOS normal'
    );
    const cpu = widget.node.querySelector('[data-partition="cpu"]')!;
    expect(cpu.querySelector('.jp-pwlab-partition-access')).toBeNull();
    click(gpu.querySelector('[data-pwlab-new-job="gpu"]')!);
    expect(newJobs).toEqual([['hpc', 'gpu']]);
  });

  it('renders a job row with data attributes and a badge', () => {
    const row = widget.node.querySelector('[data-job-id="j1"]')!;
    expect(row.getAttribute('data-state')).toBe('FAILED');
    expect(row.getAttribute('role')).toBe('option');
    expect(row.querySelector('.jp-pwlab-state-failed')!.textContent).toBe(
      'failed'
    );
    expect(row.textContent).toContain('train');
    expect(row.textContent).toContain('Big HPC');
    expect(row.textContent).toContain('#4242');
    expect(row.textContent).toContain('NonZeroExitCode');
    expect(row.textContent).toContain('exit 2');
  });

  it('opens a job on click and with the keyboard', async () => {
    click(widget.node.querySelector('[data-job-id="j1"]')!);
    expect(opened).toEqual(['j1']);
    await rendered(widget);
    const list = widget.node.querySelector<HTMLElement>('[role="listbox"]')!;
    keyDown(list, 'Home');
    await rendered(widget);
    keyDown(list, 'Enter');
    expect(opened).toEqual(['j1', 'j1']);
    expect(list.getAttribute('aria-activedescendant')).toBe(
      'jp-pwlab-job-row-0'
    );
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
    const rows = widget.node.querySelectorAll('.jp-pwlab-job-row');
    expect(Array.from(rows).map(r => r.getAttribute('data-job-id'))).toEqual([
      'j2',
      'j1'
    ]);
  });

  it('filters by state and searches by name', async () => {
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: 'j2',
      cluster: 'hpc',
      name: 'preprocess',
      state: 'QUEUED',
      terminal: false,
      updated_at: '2030-01-01T00:00:00Z'
    });
    await rendered(widget);
    const ids = () =>
      Array.from(widget.node.querySelectorAll('.jp-pwlab-job-row')).map(r =>
        r.getAttribute('data-job-id')
      );
    expect(ids()).toEqual(['j2', 'j1']);
    change(widget.node.querySelector('[data-pwlab-filter="state"]')!, 'active');
    await rendered(widget);
    expect(ids()).toEqual(['j2']);
    change(widget.node.querySelector('[data-pwlab-filter="state"]')!, '');
    await rendered(widget);
    change(widget.node.querySelector('[data-pwlab-filter="search"]')!, 'TRA');
    await rendered(widget);
    expect(ids()).toEqual(['j1']);
    expect(widget.node.textContent).toContain('1 of 2 jobs');
  });
});

describe('a cluster that is switched off', () => {
  it('offers Start, and only for that cluster', async () => {
    const api = new FakeAPI();
    api.clusters = [
      makeCluster({ id: 'pw-a', name: 'platform A', status: 'off' }),
      makeCluster({ id: 'hpc', name: 'Big HPC' })
    ];
    const model = new JobsModel({
      api,
      events: new Signal({}),
      autoStart: false
    });
    const details = new ClusterDetails({ api });
    await model.refresh();
    const started: string[] = [];
    const widget = new JobsSidebar({
      model,
      details,
      onOpenJob: () => undefined,
      onNewJob: () => undefined,
      onStartCluster: id => started.push(id)
    });
    Widget.attach(widget, document.body);
    await rendered(widget);
    const buttons = widget.node.querySelectorAll('.jp-pwlab-cluster-start');
    expect(buttons.length).toBe(1);
    const off = widget.node.querySelector('[data-cluster-id="pw-a"]')!;
    expect(off.querySelector('.jp-pwlab-cluster-start')).toBe(buttons[0]);
    click(buttons[0] as HTMLElement);
    expect(started).toEqual(['pw-a']);
    widget.dispose();
    model.dispose();
    details.dispose();
  });
});
