import type { JupyterFrontEnd } from '@jupyterlab/application';
import {
  MainAreaWidget,
  Notification,
  WidgetTracker
} from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import * as React from 'react';

import { ClusterDetails } from '../clustermodel';
import { addCommands } from '../commands';
import { JobDetailPanel } from '../components/jobdetail';
import { JobsTable } from '../components/jobstable';
import {
  formatFromNow,
  formatPercent,
  shortCommit,
  startEstimate,
  usageMeasures
} from '../guidance';
import { JobsModel } from '../model';
import { CommandIDs, type IParallelWorksLab } from '../tokens';
import { JOB_STATE_SCHEMA, type IEventEmission, type IJob } from '../types';
import { click, renderElement } from './dom';
import { FakeAPI, makeJob, sleep, until } from './fixtures';
import {
  finishedJob,
  NOTEBOOK_PROVENANCE,
  pendingJob,
  SACCT_USAGE
} from './guidancedata';

describe('guidance helpers', () => {
  const now = Date.parse('2025-03-04T10:00:00Z');

  it('words a start estimate, only for a waiting job and a future time', () => {
    const job = {
      state: 'QUEUED' as const,
      estimated_start: '2025-03-04T10:12:00Z'
    };
    const estimate = startEstimate(job, now, 'en-GB')!;
    expect(estimate.fromNow).toBe('in 12 min');
    expect(estimate.iso).toBe('2025-03-04T10:12:00.000Z');
    expect(estimate.time).toBe(
      new Date('2025-03-04T10:12:00Z').toLocaleTimeString('en-GB', {
        hour: '2-digit',
        minute: '2-digit'
      })
    );
    expect(
      startEstimate({ ...job, estimated_start: '2025-03-04T09:59:00Z' }, now)
    ).toBeNull();
    expect(startEstimate({ ...job, estimated_start: null }, now)).toBeNull();
    expect(startEstimate({ ...job, state: 'RUNNING' }, now)).toBeNull();
    expect(formatFromNow(30_000)).toBe('in less than a minute');
    expect(formatFromNow(125 * 60_000)).toBe('in 2 h 5 min');
  });

  it('gives amounts and percentages for each measure', () => {
    expect(usageMeasures(SACCT_USAGE)).toEqual([
      {
        key: 'time',
        label: 'Time',
        text: '9 min of a 2 h limit (8%)',
        ratio: 0.075
      },
      {
        key: 'cpu',
        label: 'CPU',
        text: '33% busy on 4 CPUs (12 min of CPU time)',
        ratio: 0.33
      },
      {
        key: 'memory',
        label: 'Memory',
        text: 'peak 1.2 GiB of 10 GiB requested (12%)',
        ratio: 0.12
      },
      { key: 'gpus', label: 'GPUs', text: 'none requested', ratio: null }
    ]);
  });

  it('says what was not measured, and computes a missing ratio', () => {
    const texts = usageMeasures({
      source: 'qacct',
      elapsed_seconds: 42,
      time_limit_seconds: null,
      cpus: 1,
      cpu_seconds: null,
      cpu_efficiency: null,
      max_memory_mb: 512,
      requested_memory_mb: 2048,
      memory_efficiency: null,
      gpus: 2,
      hints: [],
      summary: null
    });
    expect(texts.map(m => m.text)).toEqual([
      '42 s (no time limit)',
      '1 CPU, use not measured',
      'peak 512 MiB of 2 GiB requested (25%)',
      '2 requested'
    ]);
    expect(formatPercent(0.004)).toBe('<1%');
    expect(formatPercent(1.5)).toBe('150%');
    expect(shortCommit('3e1f9a7c2b4d6e8f0a1b')).toBe('3e1f9a7');
  });
});

describe('guidance in the job detail', () => {
  let api: FakeAPI;
  let model: JobsModel;
  let events: Signal<object, IEventEmission>;
  let commands: CommandRegistry;
  let panel: JobDetailPanel | null;
  let opened: string[];
  let notebook: FakeNotebookPanel;

  /**
   * Just enough of a NotebookPanel for the open-cell command.
   */
  class FakeNotebookPanel {
    id = 'notebook-panel-1';
    scrolledTo: string[] = [];
    context = {
      ready: Promise.resolve(),
      path: NOTEBOOK_PROVENANCE.notebook_path
    };
    content = {
      activeCellIndex: 0,
      mode: 'edit',
      widgets: ['first-cell', NOTEBOOK_PROVENANCE.cell_id!, 'last-cell'].map(
        id => ({ model: { id } })
      ),
      scrollToCell: async (cell: { model: { id: string } }) => {
        this.scrolledTo.push(cell.model.id);
      }
    };
  }

  async function settle(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await sleep(0);
      panel!.update();
      await panel!.renderPromise;
    }
    await sleep(0);
  }

  async function show(job: IJob): Promise<HTMLElement> {
    api.jobs = [job];
    await model.refresh();
    panel = new JobDetailPanel({ jobId: job.id, model, api, commands });
    Widget.attach(panel, document.body);
    await until(() => !!panel!.node.querySelector('.jp-pwlab-detail-header'));
    await settle();
    return panel.node;
  }

  beforeEach(() => {
    api = new FakeAPI();
    events = new Signal({});
    model = new JobsModel({ api, events, autoStart: false });
    commands = new CommandRegistry();
    opened = [];
    panel = null;
    notebook = new FakeNotebookPanel();
    // The document manager's command, as JupyterLab registers it.
    commands.addCommand('docmanager:open', {
      execute: async args => {
        opened.push(String(args.path));
        if (args.path !== NOTEBOOK_PROVENANCE.notebook_path) {
          throw new Error(`No such file: ${args.path}`);
        }
        return notebook as unknown as never;
      }
    });
    const pwlab: IParallelWorksLab = {
      model,
      details: new ClusterDetails({ api }),
      api,
      defaultCluster: '',
      openSubmitForm: () => undefined,
      openJob: async () => undefined,
      submission: () => undefined
    };
    addCommands({
      app: {
        commands,
        shell: { activateById: () => undefined, currentWidget: null }
      } as unknown as JupyterFrontEnd,
      pwlab,
      details: new WidgetTracker<MainAreaWidget<JobDetailPanel>>({
        namespace: 'guidance-test'
      }),
      sidebarId: 'jp-pwlab-sidebar',
      notebooks: null
    });
    Notification.dismiss();
  });

  afterEach(() => {
    panel?.dispose();
    model.dispose();
    Notification.dismiss();
  });

  const text = (node: HTMLElement, selector: string) =>
    node.querySelector(selector)?.textContent ?? null;

  it('says why a queued job waits, what to do, and when it should start', async () => {
    const node = await show(pendingJob());
    const waiting = node.querySelector('[data-pwlab-waiting="Resources"]')!;
    expect(waiting).not.toBeNull();
    expect(text(node, '[data-pwlab-reason-summary]')).toBe(
      'Your job is waiting for nodes to become free: the partition is busy right now.'
    );
    expect(text(node, '[data-pwlab-reason-advice]')).toBe(
      'What you can do: Asking for less time or fewer nodes can let it start sooner, in a gap between other jobs.'
    );
    expect(text(node, '[data-pwlab-reason-code]')).toBe(
      'Scheduler reason: Resources'
    );
    const estimate = text(node, '[data-pwlab-estimate]')!;
    expect(estimate).toMatch(
      /^Expected to start: \d\d:\d\d\s?(AM|PM)? \(in 12 min\) — the scheduler's estimate, it can change$/
    );
    expect(text(node, '[data-pwlab-partition-load]')).toBe(
      '0 of 8 nodes idle in gpu'
    );
    // The raw reason is not repeated among the fields.
    expect(node.querySelector('[data-pwlab-detail="Reason"]')).toBeNull();
  });

  it("lists the scheduler's own words on a waiting job", async () => {
    const node = await show({
      ...pendingJob(),
      reason: null,
      reason_explained: {
        code: 'scheduling info',
        summary: 'The scheduler has not started it yet; what it says is below.',
        advice: null,
        known: true,
        details: ['Queue all.q@h1 is full.', 'A queue it could use is down.']
      }
    });
    const items = node.querySelectorAll('[data-pwlab-reason-details] li');
    expect(Array.from(items).map(li => li.textContent)).toEqual([
      'Queue all.q@h1 is full.',
      'A queue it could use is down.'
    ]);
    expect(text(node, '[data-pwlab-reason-details]')).toContain(
      'The scheduler says:'
    );
  });

  it('shows an unknown code as the scheduler wrote it', async () => {
    const node = await show({
      ...pendingJob(),
      reason: 'BurstBufferStageIn',
      reason_explained: {
        code: 'BurstBufferStageIn',
        summary:
          "The scheduler says 'BurstBufferStageIn'; this extension has no explanation for it.",
        advice: null,
        known: false
      },
      estimated_start: null
    });
    expect(text(node, '[data-pwlab-reason-summary]')).toContain(
      "'BurstBufferStageIn'"
    );
    expect(node.querySelector('[data-pwlab-reason-advice]')).toBeNull();
    expect(text(node, '[data-pwlab-reason-code]')).toBe(
      'Scheduler reason: BurstBufferStageIn (not a reason this extension knows)'
    );
    expect(node.querySelector('[data-pwlab-estimate]')).toBeNull();
  });

  it('shows the raw code alone without an explanation, and never nothing', async () => {
    const node = await show({
      ...pendingJob(),
      state: 'HELD',
      reason: 'JobHeldAdmin',
      reason_explained: null,
      estimated_start: new Date(Date.now() - 60_000).toISOString(),
      partition_load: null
    });
    expect(text(node, '[data-pwlab-reason-summary]')).toBe(
      'The scheduler gives the reason JobHeldAdmin.'
    );
    // A past estimate is not shown.
    expect(node.querySelector('[data-pwlab-estimate]')).toBeNull();
    panel!.dispose();

    const silent = await show(
      makeJob({ id: 'queued000001', state: 'QUEUED', reason: null })
    );
    expect(text(silent, '[data-pwlab-reason-summary]')).toBe(
      'The scheduler has not given a reason yet.'
    );
  });

  it('shows what a finished job used, with amounts, percentages and hints', async () => {
    const node = await show(finishedJob());
    const card = node.querySelector('[data-pwlab-usage="sacct"]')!;
    expect(card).not.toBeNull();
    expect(text(node, '.jp-pwlab-usage-summary')).toBe(
      'Used 12% of its memory request (1.2 GiB of 10 GiB)'
    );
    const measure = (key: string) =>
      text(node, `[data-pwlab-usage-measure="${key}"]`);
    expect(measure('time')).toBe('9 min of a 2 h limit (8%)');
    expect(measure('cpu')).toBe('33% busy on 4 CPUs (12 min of CPU time)');
    expect(measure('memory')).toBe('peak 1.2 GiB of 10 GiB requested (12%)');
    expect(measure('gpus')).toBe('none requested');
    const memoryBar = node.querySelector<HTMLElement>(
      '[data-pwlab-usage-measure="memory"] .jp-pwlab-bar'
    )!;
    expect(memoryBar.classList).toContain('jp-mod-low');
    expect(
      memoryBar.querySelector<HTMLElement>('.jp-pwlab-bar-fill')!.style.width
    ).toBe('12%');
    expect(
      Array.from(node.querySelectorAll('.jp-pwlab-usage-hints li')).map(
        li => li.textContent
      )
    ).toEqual(SACCT_USAGE.hints);
    expect(text(node, '.jp-pwlab-usage-source')).toBe(
      'from Slurm accounting (sacct)'
    );
  });

  it('says plainly when a finished job has no measurements, and shows them when they arrive', async () => {
    const job = finishedJob({ usage: null, provenance: null });
    const node = await show(job);
    expect(text(node, '[data-pwlab-usage="none"]')).toContain(
      'No measurements for this job'
    );
    events.emit({
      schema_id: JOB_STATE_SCHEMA,
      id: job.id,
      usage: SACCT_USAGE,
      updated_at: '2025-03-04T10:10:00Z'
    });
    await settle();
    expect(node.querySelector('[data-pwlab-usage="sacct"]')).not.toBeNull();
  });

  it('says where a job came from and opens its cell', async () => {
    const node = await show(finishedJob());
    const row = (key: string) => text(node, `[data-pwlab-provenance="${key}"]`);
    expect(row('user')).toBe('alice');
    expect(row('notebook')).toBe('experiments/analysis.ipynb Open the cell');
    expect(row('git')).toBe('3e1f9a7 + uncommitted changes');
    expect(row('modules')).toBe('gcc/12.2.0cuda/12.1python/3.11');

    click(node.querySelector('[data-pwlab-open-cell]')!);
    await until(() => notebook.scrolledTo.length > 0);
    expect(opened).toEqual(['experiments/analysis.ipynb']);
    expect(notebook.scrolledTo).toEqual([NOTEBOOK_PROVENANCE.cell_id]);
    expect(notebook.content.activeCellIndex).toBe(1);
    expect(notebook.content.mode).toBe('command');
  });

  it('says so when the cell is gone or the notebook cannot be opened', async () => {
    await commands.execute(CommandIDs.openCell, {
      path: NOTEBOOK_PROVENANCE.notebook_path,
      cell: 'deleted-cell'
    });
    expect(notebook.scrolledTo).toEqual([]);
    expect(Notification.manager.notifications.map(n => n.message)).toEqual([
      'The cell this job was submitted from is no longer in experiments/analysis.ipynb: it was deleted, or the notebook was replaced.'
    ]);
    Notification.dismiss();

    await commands.execute(CommandIDs.openCell, {
      path: 'moved.ipynb',
      cell: 'x'
    });
    expect(Notification.manager.notifications[0].message).toBe(
      'Cannot open moved.ipynb: No such file: moved.ipynb'
    );
    expect(commands.isEnabled(CommandIDs.openCell, { path: '' })).toBe(false);
  });

  it('shows no provenance section when nothing was recorded', async () => {
    const node = await show(
      finishedJob({
        provenance: {
          user: null,
          notebook_path: null,
          cell_id: null,
          git_commit: null,
          git_dirty: null,
          modules: []
        }
      })
    );
    expect(node.querySelector('.jp-pwlab-provenance')).toBeNull();
  });
});

describe('the reason in the jobs table', () => {
  it('has the plain sentence as its tooltip', async () => {
    const jobs = [
      pendingJob(),
      makeJob({ id: 'b', reason: 'Priority', submitted_at: null })
    ];
    const { node, widget } = await renderElement(
      <JobsTable
        jobs={jobs}
        clusters={[]}
        now={Date.now()}
        loaded={true}
        onOpen={() => undefined}
      />
    );
    const reasons = Array.from(
      node.querySelectorAll<HTMLElement>('.jp-pwlab-job-reason')
    );
    expect(reasons.map(r => [r.textContent, r.title])).toEqual([
      [
        'Resources',
        'Your job is waiting for nodes to become free: the partition is busy right now.'
      ],
      ['Priority', 'Reason: Priority']
    ]);
    widget.dispose();
  });
});

// Keep React in scope for the JSX above.
void React;
