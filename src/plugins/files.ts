import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { IEditorTracker } from '@jupyterlab/fileeditor';

import { prefillFromFile } from '../submission';
import { CommandIDs, IParallelWorksLab, PALETTE_CATEGORY } from '../tokens';

/**
 * The largest script the server takes, in bytes.
 */
const MAX_SCRIPT_BYTES = 1_000_000;

/**
 * Files that cannot be submitted as they are.
 */
const NOT_SUBMITTABLE = /\.(ipynb|png|jpe?g|gif|pdf|zip|gz|tar|h5|npy|pkl)$/i;

/**
 * "Submit to cluster…" on files in the file browser, and for the current
 * editor's text.
 */
export const filesPlugin: JupyterFrontEndPlugin<void> = {
  id: 'parallelworks-lab:files',
  description: 'Submit a file or the current editor to an HPC cluster.',
  autoStart: true,
  requires: [IParallelWorksLab],
  optional: [IFileBrowserFactory, IEditorTracker, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    pwlab: IParallelWorksLab,
    browsers: IFileBrowserFactory | null,
    editors: IEditorTracker | null,
    palette: ICommandPalette | null
  ): void => {
    const { commands, serviceManager, shell } = app;

    /**
     * The interpreter of the cluster a new form starts on.
     */
    const python = (): string => {
      const { model } = pwlab;
      const cluster =
        model.getCluster(pwlab.defaultCluster) ?? model.clusters[0];
      return cluster?.python || 'python3';
    };

    const open = (path: string, content: string): void => {
      if (new Blob([content]).size > MAX_SCRIPT_BYTES) {
        Notification.error(
          `${path} is larger than ${MAX_SCRIPT_BYTES} bytes: too big for a job script.`,
          { autoClose: 8000 }
        );
        return;
      }
      pwlab.openSubmitForm(prefillFromFile(path, content, python()));
    };

    const selectedFile = (): string | null => {
      const browser = browsers?.tracker.currentWidget;
      const item = browser?.selectedItems().next();
      const model = item && !item.done ? item.value : null;
      return model && model.type !== 'directory' ? model.path : null;
    };

    commands.addCommand(CommandIDs.submitFile, {
      label: 'Submit to cluster…',
      caption: 'Open the submit form for this file, run in its folder',
      isVisible: args => {
        const path = typeof args.path === 'string' ? args.path : selectedFile();
        return !!path && !NOT_SUBMITTABLE.test(path);
      },
      execute: async args => {
        const path = typeof args.path === 'string' ? args.path : selectedFile();
        if (!path) {
          return;
        }
        try {
          const file = await serviceManager.contents.get(path, {
            type: 'file',
            format: 'text',
            content: true
          });
          open(path, String(file.content ?? ''));
        } catch (error) {
          Notification.error(
            `Cannot read ${path}: ${error instanceof Error ? error.message : error}`,
            { autoClose: 8000 }
          );
        }
      }
    });

    commands.addCommand(CommandIDs.submitEditor, {
      label: 'Submit Current File to Cluster…',
      caption: "Open the submit form with the editor's text (saved or not)",
      isEnabled: () =>
        !!editors?.currentWidget &&
        editors.currentWidget === shell.currentWidget,
      execute: () => {
        const widget = editors?.currentWidget;
        if (!widget) {
          return;
        }
        open(widget.context.path, widget.content.model.sharedModel.getSource());
      }
    });

    palette?.addItem({
      command: CommandIDs.submitEditor,
      category: PALETTE_CATEGORY
    });
  }
};
