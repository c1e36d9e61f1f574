import type { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  InputDialog,
  MainAreaWidget,
  Notification,
  showDialog,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import {
  NotebookActions,
  type INotebookTracker,
  type NotebookPanel
} from '@jupyterlab/notebook';
import { addIcon, refreshIcon } from '@jupyterlab/ui-components';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { APIError } from './api';
import type { JobDetailPanel } from './components/jobdetail';
import { clusterIcon } from './icons';
import { describeJob } from './notifier';
import { isNotebookPanel, revealCell } from './opencell';
import { prefillFromJob } from './submission';
import { CommandIDs, type IParallelWorksLab } from './tokens';
import type { IJob } from './types';

/**
 * What the job commands need.
 */
export interface ICommandContext {
  app: JupyterFrontEnd;
  pwlab: IParallelWorksLab;
  /**
   * The open job details (the current one is the target when no id is given).
   */
  details: WidgetTracker<MainAreaWidget<JobDetailPanel>>;
  sidebarId: string;
  notebooks: INotebookTracker | null;
}

/**
 * The document manager's command that opens (or reveals) a file.
 */
const DOCMANAGER_OPEN = 'docmanager:open';

/**
 * The Python that gets a job in a notebook.
 */
export function jobSnippet(job: IJob): string {
  return [
    'from parallelworks_lab import Client',
    '',
    `job = Client().job(${JSON.stringify(job.id)})  # ${describeJob(job)}`,
    'job'
  ].join('\n');
}

/**
 * Add the commands of the extension to the application.
 */
export function addCommands(context: ICommandContext): void {
  const { app, pwlab, details, notebooks } = context;
  const { commands, shell } = app;
  const { model } = pwlab;

  /**
   * The job a command acts on: `args.id`, else the current job detail's.
   */
  const target = (args: ReadonlyPartialJSONObject): IJob | undefined => {
    const id =
      typeof args.id === 'string'
        ? args.id
        : details.currentWidget?.content.jobId;
    return id ? model.getJob(id) : undefined;
  };
  const label = (
    args: ReadonlyPartialJSONObject,
    short: string,
    long: string
  ) => (args.short ? short : long);

  commands.addCommand(CommandIDs.openSidebar, {
    label: 'Open HPC Jobs Panel',
    caption: 'Show the clusters and jobs panel',
    icon: args => (args.isPalette ? undefined : clusterIcon),
    execute: () => shell.activateById(context.sidebarId)
  });

  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh HPC Clusters and Jobs',
    icon: args => (args.isPalette ? undefined : refreshIcon),
    execute: async () => {
      await Promise.all([model.refresh(), pwlab.details.refresh()]);
    }
  });

  commands.addCommand(CommandIDs.newJob, {
    label: 'New HPC Job…',
    caption: 'Open the form to submit a job to a cluster',
    icon: args => (args.isPalette ? undefined : addIcon),
    execute: args => {
      const cluster = typeof args.cluster === 'string' ? args.cluster : '';
      const partition =
        typeof args.partition === 'string' ? args.partition : '';
      pwlab.openSubmitForm({
        ...(cluster ? { cluster } : {}),
        ...(partition ? { resources: { partition } } : {})
      });
    }
  });

  commands.addCommand(CommandIDs.openJob, {
    label: args => (args.id ? `Open Job ${args.id}` : 'Open HPC Job…'),
    caption: 'Show a job with its output',
    execute: async args => {
      let id = typeof args.id === 'string' ? args.id : '';
      if (!id) {
        const answer = await InputDialog.getText({
          title: 'Open HPC Job',
          label: 'Job id, or the scheduler id',
          placeholder: 'e.g. 3f2a9c01b7de or 4242'
        });
        const text = answer.value?.trim();
        if (!answer.button.accept || !text) {
          return;
        }
        id = model.jobs.find(j => j.native_id === text)?.id ?? text;
      }
      await pwlab.openJob(id);
    }
  });

  const control = async (
    job: IJob,
    what: 'cancel' | 'hold' | 'release'
  ): Promise<void> => {
    try {
      const updated = await pwlab.api[what](job.id);
      model.upsert(updated);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      Notification.error(`Cannot ${what} ${describeJob(job)}: ${message}`, {
        autoClose: 8000
      });
      if (error instanceof APIError && error.status === 409) {
        await model.fetchJob(job.id).catch(() => undefined);
      }
    }
  };

  commands.addCommand(CommandIDs.cancelJob, {
    label: args => label(args, 'Cancel', 'Cancel HPC Job'),
    caption: 'Stop the job, or take it out of the queue',
    isEnabled: args => {
      const job = target(args);
      return !!job && !job.terminal;
    },
    execute: async args => {
      const job = target(args);
      if (!job || job.terminal) {
        return;
      }
      const result = await showDialog({
        title: 'Cancel job',
        body: `Cancel ${describeJob(job)}? A running job is stopped.`,
        buttons: [
          Dialog.cancelButton({ label: 'Keep it' }),
          Dialog.warnButton({ label: 'Cancel job' })
        ]
      });
      if (result.button.accept) {
        await control(job, 'cancel');
      }
    }
  });

  commands.addCommand(CommandIDs.holdJob, {
    label: args => label(args, 'Hold', 'Hold HPC Job'),
    caption: 'Keep a queued job from starting until it is released',
    isEnabled: args => target(args)?.state === 'QUEUED',
    execute: async args => {
      const job = target(args);
      if (job) {
        await control(job, 'hold');
      }
    }
  });

  commands.addCommand(CommandIDs.releaseJob, {
    label: args => label(args, 'Release', 'Release HPC Job'),
    caption: 'Let a held job start',
    isEnabled: args => target(args)?.state === 'HELD',
    execute: async args => {
      const job = target(args);
      if (job) {
        await control(job, 'release');
      }
    }
  });

  commands.addCommand(CommandIDs.resubmitJob, {
    label: args => label(args, 'Resubmit…', 'Resubmit HPC Job with Edits…'),
    caption: 'Open the submit form filled with this job',
    isEnabled: args => !!target(args),
    execute: async args => {
      const job = target(args);
      if (job) {
        const root = PageConfig.getOption('serverRoot');
        // The server keeps every submission; the session cache saves a request.
        let spec = pwlab.submission(job.id);
        if (!spec) {
          try {
            spec = await pwlab.api.getSubmission(job.id);
          } catch (reason) {
            console.warn('parallelworks-lab: no stored submission', reason);
          }
        }
        pwlab.openSubmitForm(prefillFromJob(job, root, spec));
      }
    }
  });

  commands.addCommand(CommandIDs.copyJobId, {
    label: args => label(args, 'Copy id', 'Copy HPC Job Id'),
    caption: 'Copy the job id to the clipboard',
    isEnabled: args => !!target(args),
    execute: args => {
      const job = target(args);
      if (job) {
        Clipboard.copyToSystem(job.id);
        Notification.info(`Copied the id of ${describeJob(job)}: ${job.id}`, {
          autoClose: 3000
        });
      }
    }
  });

  commands.addCommand(CommandIDs.insertJobCode, {
    label: args =>
      label(args, 'Insert code', 'Insert HPC Job Code in Notebook'),
    caption: 'Add a cell to the current notebook that gets this job in Python',
    isEnabled: args => !!target(args) && !!notebooks?.currentWidget,
    execute: async args => {
      const job = target(args);
      const panel = notebooks?.currentWidget;
      if (!job || !panel) {
        return;
      }
      await panel.context.ready;
      NotebookActions.insertBelow(panel.content);
      panel.content.activeCell?.model.sharedModel.setSource(jobSnippet(job));
      shell.activateById(panel.id);
    }
  });

  commands.addCommand(CommandIDs.openCell, {
    label: args =>
      args.cell ? 'Open the Cell of an HPC Job' : 'Open the Notebook of a Job',
    caption: args =>
      typeof args.path === 'string' && args.path
        ? `Open ${args.path}${args.cell ? ' at the cell the job was submitted from' : ''}`
        : 'Open the notebook a job was submitted from, at its cell',
    isEnabled: args => typeof args.path === 'string' && args.path !== '',
    execute: async args => {
      const path = typeof args.path === 'string' ? args.path : '';
      const cell = typeof args.cell === 'string' ? args.cell : '';
      if (!path) {
        return;
      }
      let widget: unknown;
      try {
        // The document manager opens the notebook, or shows it if open.
        widget = await commands.execute(DOCMANAGER_OPEN, { path });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        Notification.error(`Cannot open ${path}: ${message}`, {
          autoClose: 8000
        });
        return;
      }
      const panel = isNotebookPanel(widget as never)
        ? (widget as NotebookPanel)
        : notebooks?.find(p => p.context.path === path);
      if (!cell || !panel) {
        return;
      }
      if (!(await revealCell(panel, cell))) {
        Notification.warning(
          `The cell this job was submitted from is no longer in ${path}: it was deleted, or the notebook was replaced.`,
          { autoClose: 8000 }
        );
        return;
      }
      shell.activateById(panel.id);
    }
  });
}
