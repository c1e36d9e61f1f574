import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IStatusBar } from '@jupyterlab/statusbar';

import { JobsStatusItem } from '../components/statusitem';
import { CommandIDs, IParallelWorksLab } from '../tokens';

/**
 * Running and queued job counts in the status bar.
 */
export const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'parallelworks-lab:status',
  description: 'Shows how many HPC jobs run and wait, in the status bar.',
  autoStart: true,
  requires: [IParallelWorksLab, IStatusBar],
  activate: (
    app: JupyterFrontEnd,
    pwlab: IParallelWorksLab,
    statusBar: IStatusBar
  ): void => {
    const item = new JobsStatusItem({
      model: pwlab.model,
      onClick: () => void app.commands.execute(CommandIDs.openSidebar)
    });
    statusBar.registerStatusItem('parallelworks-lab:status', {
      item,
      align: 'left',
      rank: 50,
      isActive: () => item.hasJobs,
      activeStateChanged: pwlab.model.changed
    });
  }
};
