import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  Notification,
  WidgetTracker
} from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { createJobsAPI } from '../api';
import { ClusterDetails } from '../clustermodel';
import { addCommands } from '../commands';
import { JobDetailPanel } from '../components/jobdetail';
import { JobsSidebar } from '../components/sidebar';
import { SubmitPanel } from '../components/submitpanel';
import { clusterIcon } from '../icons';
import { JobsModel } from '../model';
import { JobEndNotifier, type IJobNotice } from '../notifier';
import type { IFormPrefill } from '../submission';
import { CommandIDs, IParallelWorksLab, PALETTE_CATEGORY } from '../tokens';
import type { IJob, IJobSubmission } from '../types';

/**
 * The id of the core plugin, which owns the settings.
 */
export const PLUGIN_ID = 'parallelworks-lab:plugin';

/**
 * How many submitted bodies are kept for "resubmit with edits".
 */
const MAX_REMEMBERED = 200;

/**
 * The core: the jobs model, the sidebar, the submit form, job details, the
 * commands, settings and notifications.
 */
export const corePlugin: JupyterFrontEndPlugin<IParallelWorksLab> = {
  id: PLUGIN_ID,
  description:
    'HPC clusters and jobs: sidebar, submit form, job details, notifications.',
  autoStart: true,
  provides: IParallelWorksLab,
  optional: [
    ILayoutRestorer,
    ISettingRegistry,
    ICommandPalette,
    INotebookTracker
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null
  ): IParallelWorksLab => {
    const { commands, serviceManager, shell } = app;
    const api = createJobsAPI(serviceManager.serverSettings);
    const model = new JobsModel({ api, events: serviceManager.events.stream });
    const details = new ClusterDetails({ api });
    const submissions = new Map<string, IJobSubmission>();
    const tracker = new WidgetTracker<MainAreaWidget<JobDetailPanel>>({
      namespace: 'parallelworks-lab-job'
    });
    let defaultCluster = '';

    const openJob = async (id: string): Promise<void> => {
      const open = tracker.find(widget => widget.content.jobId === id);
      if (open) {
        shell.activateById(open.id);
        return;
      }
      const content = new JobDetailPanel({ jobId: id, model, api, commands });
      const widget = new MainAreaWidget({ content });
      widget.id = `jp-pwlab-job-panel-${id}`;
      widget.title.icon = clusterIcon;
      widget.title.closable = true;
      await tracker.add(widget);
      shell.add(widget, 'main');
      shell.activateById(widget.id);
    };

    const submit = async (body: IJobSubmission): Promise<IJob> => {
      const job = await api.submit(body);
      submissions.set(job.id, body);
      if (submissions.size > MAX_REMEMBERED) {
        submissions.delete(submissions.keys().next().value as string);
      }
      model.upsert(job);
      return job;
    };

    const openSubmitForm = (prefill: IFormPrefill = {}): void => {
      const content = new SubmitPanel({
        model,
        details,
        prefill,
        defaultCluster,
        submit,
        onOpenJob: id => void openJob(id),
        guidance: api
      });
      const widget = new MainAreaWidget({ content });
      widget.id = `${content.id}-panel`;
      widget.title.icon = clusterIcon;
      widget.title.closable = true;
      shell.add(widget, 'main');
      shell.activateById(widget.id);
    };

    const sidebar = new JobsSidebar({
      model,
      details,
      onOpenJob: id => void openJob(id),
      onNewJob: (cluster, partition) =>
        void commands.execute(CommandIDs.newJob, {
          cluster: cluster ?? '',
          partition: partition ?? ''
        }),
      onStartCluster: cluster => {
        api
          .startCluster(cluster)
          .then(() => model.refresh())
          .catch(reason =>
            Notification.error(
              `Cannot start cluster ${cluster}: ${reason.message ?? reason}`
            )
          );
      }
    });
    sidebar.disposed.connect(() => {
      model.dispose();
      details.dispose();
    });
    shell.add(sidebar, 'left', { rank: 900 });

    const pwlab: IParallelWorksLab = {
      model,
      details,
      api,
      get defaultCluster() {
        return defaultCluster;
      },
      openSubmitForm,
      openJob,
      submission: id => submissions.get(id)
    };

    addCommands({
      app,
      pwlab,
      details: tracker,
      sidebarId: sidebar.id,
      notebooks
    });
    notebooks?.currentChanged.connect(() =>
      commands.notifyCommandChanged(CommandIDs.insertJobCode)
    );
    tracker.currentChanged.connect(() => commands.notifyCommandChanged());

    if (restorer) {
      restorer.add(sidebar, 'parallelworks-lab-sidebar');
      void restorer.restore(tracker, {
        command: CommandIDs.openJob,
        args: widget => ({ id: widget.content.jobId }),
        name: widget => widget.content.jobId
      });
    }

    if (palette) {
      for (const command of [
        CommandIDs.openSidebar,
        CommandIDs.refresh,
        CommandIDs.newJob,
        CommandIDs.openJob,
        CommandIDs.cancelJob,
        CommandIDs.holdJob,
        CommandIDs.releaseJob,
        CommandIDs.resubmitJob,
        CommandIDs.copyJobId,
        CommandIDs.insertJobCode
      ]) {
        palette.addItem({ command, category: PALETTE_CATEGORY });
      }
    }

    const noticeOptions = (notice: IJobNotice) => ({
      autoClose: 10000,
      actions: [
        {
          label: 'Show job',
          caption: 'Open the job with its output',
          callback: () => void openJob(notice.jobId)
        }
      ]
    });
    const notifier = new JobEndNotifier(
      model,
      notice =>
        Notification.emit(notice.message, notice.kind, noticeOptions(notice)),
      {
        // What the job used, when it is measured after the job ended.
        update: (id, notice) =>
          Notification.update({
            id,
            message: notice.message,
            type: notice.kind,
            ...noticeOptions(notice)
          })
      }
    );
    sidebar.disposed.connect(() => notifier.dispose());

    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings): void => {
        const seconds = settings.get('pollInterval').composite;
        if (typeof seconds === 'number' && seconds >= 1) {
          model.pollInterval = seconds * 1000;
        }
        const maxJobs = settings.get('maxJobs').composite;
        if (typeof maxJobs === 'number' && maxJobs >= 1) {
          model.maxJobs = maxJobs;
        }
        const cluster = settings.get('defaultCluster').composite;
        defaultCluster = typeof cluster === 'string' ? cluster : '';
        notifier.enabled = settings.get('notifications').composite !== false;
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          apply(settings);
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.error('parallelworks-lab: cannot load settings.', reason);
        });
    }

    return pwlab;
  }
};
