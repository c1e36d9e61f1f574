import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { refreshIcon } from '@jupyterlab/ui-components';

import { createJobsAPI } from './api';
import { clusterIcon } from './icons';
import { JobsModel } from './model';
import { JobsSidebar } from './sidebar';

/**
 * Command ids.
 */
export namespace CommandIDs {
  export const openSidebar = 'parallelworks-lab:open-sidebar';
  export const refresh = 'parallelworks-lab:refresh';
}

const PLUGIN_ID = 'parallelworks-lab:plugin';

/**
 * The HPC jobs sidebar: clusters and jobs with their live state.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A sidebar listing HPC clusters and jobs with their live state.',
  autoStart: true,
  optional: [ILayoutRestorer, ISettingRegistry, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null
  ): void => {
    const { commands, serviceManager, shell } = app;

    const model = new JobsModel({
      api: createJobsAPI(serviceManager.serverSettings),
      events: serviceManager.events.stream
    });
    const sidebar = new JobsSidebar({ model });
    sidebar.disposed.connect(() => model.dispose());
    shell.add(sidebar, 'left', { rank: 900 });
    restorer?.add(sidebar, 'parallelworks-lab-sidebar');

    commands.addCommand(CommandIDs.openSidebar, {
      label: 'Open HPC Jobs sidebar',
      caption: 'Show the clusters and jobs panel',
      icon: args => (args.isPalette ? undefined : clusterIcon),
      execute: () => shell.activateById(sidebar.id)
    });
    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh HPC clusters and jobs',
      icon: args => (args.isPalette ? undefined : refreshIcon),
      execute: () => model.refresh()
    });
    if (palette) {
      const category = 'HPC Jobs';
      palette.addItem({ command: CommandIDs.openSidebar, category });
      palette.addItem({ command: CommandIDs.refresh, category });
    }

    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings): void => {
        const seconds = settings.get('pollInterval').composite;
        if (typeof seconds === 'number' && seconds >= 1) {
          model.pollInterval = seconds * 1000;
        }
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
  }
};

export default plugin;
