import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { clusterIcon } from '../icons';
import { countJobs, type IJobCounts } from '../jobview';
import type { JobsModel } from '../model';

/**
 * The status-bar item: how many of my jobs run and wait; a click opens the
 * sidebar.
 */
export class JobsStatusItem extends ReactWidget {
  constructor(options: { model: JobsModel; onClick: () => void }) {
    super();
    this._model = options.model;
    this._onClick = options.onClick;
    this.addClass('jp-pwlab-status');
    this._counts = countJobs(this._model.jobs);
    this._model.changed.connect(this._onChange, this);
  }

  /**
   * The counts shown.
   */
  get counts(): IJobCounts {
    return this._counts;
  }

  /**
   * Whether there is anything to show.
   */
  get hasJobs(): boolean {
    const { running, queued, held } = this._counts;
    return running + queued + held > 0;
  }

  dispose(): void {
    this._model.changed.disconnect(this._onChange, this);
    super.dispose();
  }

  protected render(): React.ReactElement {
    const { running, queued, held } = this._counts;
    const parts = [`${running} running`, `${queued} queued`];
    if (held) {
      parts.push(`${held} held`);
    }
    const text = parts.join(' · ');
    return (
      <button
        type="button"
        className="jp-pwlab-status-button"
        title={`HPC jobs: ${text}. Click to open the HPC Jobs panel.`}
        data-pwlab-running={running}
        data-pwlab-queued={queued}
        onClick={this._onClick}
      >
        <clusterIcon.react tag="span" className="jp-pwlab-status-icon" />
        <span>{text}</span>
      </button>
    );
  }

  private _onChange(): void {
    const next = countJobs(this._model.jobs);
    const { running, queued, held } = this._counts;
    if (
      next.running !== running ||
      next.queued !== queued ||
      next.held !== held
    ) {
      this._counts = next;
      this.update();
    }
  }

  private _model: JobsModel;
  private _onClick: () => void;
  private _counts: IJobCounts;
}
