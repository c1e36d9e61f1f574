import type { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { corePlugin } from './plugins/core';
import { filesPlugin } from './plugins/files';
import { statusPlugin } from './plugins/statusbar';

export { IParallelWorksLab, CommandIDs } from './tokens';

const plugins: JupyterFrontEndPlugin<any>[] = [
  corePlugin,
  filesPlugin,
  statusPlugin
];

export default plugins;
