import { ReactWidget } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import type { ClusterDetails } from '../clustermodel';
import type { JobsModel } from '../model';
import type { IFormPrefill } from '../submission';
import type { IJob, IJobSubmission } from '../types';
import { SubmitForm, type IGuidanceAPI } from './submitform';

/**
 * How many submit panels were made (for unique ids).
 */
let panelCount = 0;

/**
 * The main-area panel holding one submit form.
 */
export class SubmitPanel extends ReactWidget {
  constructor(options: SubmitPanel.IOptions) {
    super();
    this._options = options;
    this.id = `jp-pwlab-submit-${++panelCount}`;
    this.addClass('jp-pwlab-submit-panel');
    this.title.label = options.prefill.name
      ? `Submit ${options.prefill.name}`
      : 'New HPC Job';
    this.title.caption = 'Submit a job to a cluster';
    options.model.changed.connect(this._onChange, this);
    options.details.changed.connect(this._onChange, this);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._options.model.changed.disconnect(this._onChange, this);
    this._options.details.changed.disconnect(this._onChange, this);
    super.dispose();
  }

  protected render(): React.ReactElement {
    const { model, details, prefill, defaultCluster, submit, onOpenJob } =
      this._options;
    const { guidance, suggestionDelay } = this._options;
    return (
      <SubmitForm
        clusters={model.clusters}
        details={details}
        jobs={model.jobs}
        prefill={prefill}
        defaultCluster={defaultCluster}
        idPrefix={this.id}
        submit={submit}
        onOpenJob={onOpenJob}
        guidance={guidance}
        suggestionDelay={suggestionDelay}
      />
    );
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.update();
  }

  private _onChange(): void {
    if (this.isVisible) {
      this.update();
    }
  }

  private _options: SubmitPanel.IOptions;
}

/**
 * The namespace for `SubmitPanel` statics.
 */
export namespace SubmitPanel {
  export interface IOptions {
    model: JobsModel;
    details: ClusterDetails;
    prefill: IFormPrefill;
    defaultCluster: string;
    submit: (body: IJobSubmission) => Promise<IJob>;
    onOpenJob: (id: string) => void;
    /**
     * Suggestions from earlier runs and templates.
     */
    guidance?: IGuidanceAPI;
    /**
     * Milliseconds the form must rest before suggestions are asked for.
     */
    suggestionDelay?: number;
  }
}
