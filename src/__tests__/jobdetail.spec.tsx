import type { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ClusterDetails } from '../clustermodel';
import { addCommands, jobSnippet } from '../commands';
import { JobDetailPanel } from '../components/jobdetail';
import { JobsModel } from '../model';
import type { IFormPrefill } from '../submission';
import { CommandIDs, type IParallelWorksLab } from '../tokens';
import { IEventEmission, JOB_STATE_SCHEMA } from '../types';
import { click } from './dom';
import { FakeAPI, makeJob, sleep } from './fixtures';

describe('JobDetailPanel', () => {
  let api: FakeAPI;
  let model: JobsModel;
  let events: Signal<object, IEventEmission>;
  let commands: CommandRegistry;
  let panel: JobDetailPanel;
  let forms: IFormPrefill[];

  async function settle(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await sleep(0);
      panel.update();
      await panel.renderPromise;
    }
    await sleep(0);
  }

  beforeEach(async () => {
    api = new FakeAPI();
    api.jobs = [
      makeJob({
        id: 'job000000001',
        name: 'train',
        native_id: '17',
        cluster: 'hpc',
        state: 'RUNNING',
        started_at: new Date(Date.now() - 65_000).toISOString(),
        resources: {
          partition: 'gpu',
          account: 'physics',
          nodes: 2,
          gpus: 4,
          memory_mb: 8192,
          time_limit_minutes: 90
        },
        working_dir: '/home/u/exp'
      })
    ];
    api.logs.set('job000000001:stdout', { text: 'epoch 1\n', done: false });
    api.logs.set('job000000001:stderr', {
      text: 'warning: slow\n',
      done: false
    });
    events = new Signal({});
    model = new JobsModel({ api, events, autoStart: false });
    await model.refresh();
    commands = new CommandRegistry();
    forms = [];
    const pwlab: IParallelWorksLab = {
      model,
      details: new ClusterDetails({ api }),
      api,
      defaultCluster: '',
      openSubmitForm: prefill => forms.push(prefill ?? {}),
      openJob: async () => undefined,
      submission: () => ({
        cluster: 'hpc',
        script: '#!/bin/bash\necho again\n'
      })
    };
    const app = {
      commands,
      shell: { activateById: () => undefined, currentWidget: null }
    } as unknown as JupyterFrontEnd;
    addCommands({
      app,
      pwlab,
      details: new WidgetTracker<MainAreaWidget<JobDetailPanel>>({
        namespace: 'test'
      }),
      sidebarId: 'jp-pwlab-sidebar',
      notebooks: null
    });
    panel = new JobDetailPanel({
      jobId: 'job000000001',
      model,
      api,
      commands,
      logInterval: 10
    });
    Widget.attach(panel, document.body);
    await sleep(30);
    await settle();
  });

  afterEach(() => {
    panel.dispose();
    model.dispose();
    document.querySelectorAll('.jp-Dialog').forEach(d => d.remove());
  });

  const detail = (label: string) =>
    panel.node.querySelector(`[data-pwlab-detail="${label}"]`)?.textContent;
  const action = (name: string) =>
    panel.node.querySelector<HTMLButtonElement>(
      `[data-pwlab-action="${name}"]`
    )!;

  it('shows every field of the job', () => {
    expect(panel.title.label).toBe('Job train #17');
    expect(detail('State')).toBe('running');
    expect(detail('Scheduler id')).toBe('17');
    expect(detail('Partition')).toBe('gpu');
    expect(detail('Account')).toBe('physics');
    expect(detail('Nodes')).toBe('2');
    expect(detail('GPUs')).toBe('4');
    expect(detail('Memory per node')).toBe('8 GiB');
    expect(detail('Walltime')).toBe('1:30:00');
    expect(detail('Elapsed')).toMatch(/^1m 0[5-9]s$/);
    expect(detail('Time left')).toBe('1h 28m');
    expect(detail('Working directory')).toBe('/home/u/exp');
  });

  it('offers the actions the state allows', () => {
    expect(action('cancel').disabled).toBe(false);
    expect(action('hold').disabled).toBe(true);
    expect(action('release').disabled).toBe(true);
    expect(action('resubmit').disabled).toBe(false);
    expect(action('insert-code').disabled).toBe(true); // no notebook
    expect(action('cancel').textContent).toBe('Cancel');
  });

  it('follows the log and switches streams', async () => {
    const stdout = () =>
      panel.node.querySelector('[data-pwlab-log="stdout"]')?.textContent;
    expect(stdout()).toBe('epoch 1\n');
    api.logs.set('job000000001:stdout', {
      text: 'epoch 1\nepoch 2\n',
      done: false
    });
    await sleep(40);
    await settle();
    expect(stdout()).toBe('epoch 1\nepoch 2\n');
    click(panel.node.querySelector('[data-pwlab-stream="stderr"]')!);
    await sleep(40);
    await settle();
    expect(
      panel.node.querySelector('[data-pwlab-log="stderr"]')!.textContent
    ).toBe('warning: slow\n');
  });

  it('updates from push events and reads the rest of the log at the end', async () => {
    api.logs.set('job000000001:stdout', {
      text: 'epoch 1\ndone\n',
      done: true
    });
    api.jobs[0] = {
      ...api.jobs[0],
      state: 'COMPLETED',
      terminal: true,
      exit_code: 0,
      updated_at: '2030-01-01T00:00:00Z'
    };
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: 'job000000001',
      state: 'COMPLETED',
      terminal: true,
      exit_code: 0,
      updated_at: '2030-01-01T00:00:00Z'
    });
    await sleep(30);
    await settle();
    expect(detail('State')).toBe('completed');
    expect(detail('Exit code')).toBe('0');
    expect(action('cancel').disabled).toBe(true);
    expect(
      panel.node.querySelector('[data-pwlab-log="stdout"]')!.textContent
    ).toBe('epoch 1\ndone\n');
    expect(panel.node.querySelector('.jp-pwlab-log-status')!.textContent).toBe(
      'End of log.'
    );
  });

  it('cancels after confirmation', async () => {
    click(action('cancel'));
    await sleep(20);
    const dialog = document.querySelector('.jp-Dialog')!;
    expect(dialog.textContent).toContain('Job "train" (#17 on hpc)');
    const accept = Array.from(dialog.querySelectorAll('button')).find(
      b => b.textContent === 'Cancel job'
    )!;
    accept.click();
    await sleep(50);
    await settle();
    expect(api.actions).toEqual(['cancel:job000000001']);
    expect(model.getJob('job000000001')!.state).toBe('CANCELLED');
    expect(detail('State')).toBe('cancelled');
  });

  it('resubmits with edits through the form, with the script it was sent with', async () => {
    await commands.execute(CommandIDs.resubmitJob, { id: 'job000000001' });
    expect(forms).toEqual([
      expect.objectContaining({
        cluster: 'hpc',
        name: 'train',
        mode: 'script',
        script: '#!/bin/bash\necho again\n',
        resources: {
          partition: 'gpu',
          account: 'physics',
          nodes: 2,
          gpus: 4,
          memory_mb: 8192,
          time_limit_minutes: 90
        }
      })
    ]);
  });
});

describe('jobSnippet', () => {
  it('gets the job from Python', () => {
    expect(
      jobSnippet(
        makeJob({
          id: '3f2a9c01b7de',
          name: 'train',
          native_id: '17',
          cluster: 'hpc'
        })
      )
    ).toBe(
      'from parallelworks_lab import Client\n\njob = Client().job("3f2a9c01b7de")  # Job "train" (#17 on hpc)\njob'
    );
  });
});
