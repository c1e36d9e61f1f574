import {
  addIcon,
  ReactWidget,
  refreshIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import type { ClusterDetails } from '../clustermodel';
import { clusterIcon } from '../icons';
import type { JobsModel } from '../model';
import { ClusterBrowser } from './clusterbrowser';
import { JobsTable } from './jobstable';

/**
 * The left-area panel: the cluster browser and the jobs table, live.
 */
export class JobsSidebar extends ReactWidget {
  constructor(options: JobsSidebar.IOptions) {
    super();
    this.model = options.model;
    this.details = options.details;
    this._onOpenJob = options.onOpenJob;
    this._onNewJob = options.onNewJob;
    this._onStartCluster = options.onStartCluster;
    this.id = JobsSidebar.ID;
    this.title.icon = clusterIcon;
    this.title.caption = 'HPC Jobs';
    this.addClass('jp-pwlab-sidebar');
    this.model.changed.connect(this._onModelChanged, this);
    this.details.changed.connect(this._onModelChanged, this);
  }

  /**
   * The jobs model shown.
   */
  readonly model: JobsModel;

  /**
   * The cluster details shown.
   */
  readonly details: ClusterDetails;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.changed.disconnect(this._onModelChanged, this);
    this.details.changed.disconnect(this._onModelChanged, this);
    this._stopClock();
    super.dispose();
  }

  protected render(): React.ReactElement {
    const { model } = this;
    return (
      <div className="jp-pwlab-body">
        <div className="jp-pwlab-header">
          <h2 className="jp-pwlab-title">HPC Jobs</h2>
          <ToolbarButtonComponent
            className="jp-pwlab-new-job"
            icon={addIcon}
            label="New job"
            tooltip="Open the submit form"
            onClick={() => this._onNewJob()}
          />
          <ToolbarButtonComponent
            className="jp-pwlab-refresh"
            icon={refreshIcon}
            tooltip="Refresh clusters and jobs"
            onClick={() => {
              void model.refresh();
              void this.details.refresh();
            }}
          />
        </div>
        {model.error !== null && (
          <div className="jp-pwlab-error" role="alert">
            {model.error}
          </div>
        )}
        <section
          className="jp-pwlab-section jp-pwlab-clusters"
          aria-label="Clusters"
        >
          <h3 className="jp-pwlab-section-title">Clusters</h3>
          <ClusterBrowser
            clusters={model.clusters}
            details={this.details}
            loaded={model.loaded}
            onNewJob={(cluster, partition) =>
              this._onNewJob(cluster, partition)
            }
            onStart={this._onStartCluster}
          />
        </section>
        <section
          className="jp-pwlab-section jp-pwlab-jobs-section"
          aria-label="Jobs"
        >
          <h3 className="jp-pwlab-section-title">Jobs</h3>
          <JobsTable
            jobs={model.jobs}
            clusters={model.clusters}
            loaded={model.loaded}
            now={Date.now()}
            onOpen={this._onOpenJob}
          />
        </section>
      </div>
    );
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._syncClock();
    this.update();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._syncClock();
  }

  protected onBeforeHide(msg: Message): void {
    super.onBeforeHide(msg);
    this._stopClock();
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopClock();
    super.onBeforeDetach(msg);
  }

  private _onModelChanged(): void {
    this._syncClock();
    if (this.isVisible) {
      this.update();
    }
  }

  /**
   * Tick once a second, while visible and while a job is running, so that
   * elapsed times move.
   */
  private _syncClock(): void {
    const needed =
      this.isVisible &&
      this.model.jobs.some(job => !job.terminal && job.started_at);
    if (needed && this._clock === null) {
      this._clock = window.setInterval(() => this.update(), 1000);
    } else if (!needed) {
      this._stopClock();
    }
  }

  private _stopClock(): void {
    if (this._clock !== null) {
      window.clearInterval(this._clock);
      this._clock = null;
    }
  }

  private _clock: number | null = null;
  private _onOpenJob: (id: string) => void;
  private _onNewJob: (cluster?: string, partition?: string) => void;
  private _onStartCluster?: (cluster: string) => void;
}

/**
 * The namespace for `JobsSidebar` statics.
 */
export namespace JobsSidebar {
  /**
   * The DOM id of the sidebar.
   */
  export const ID = 'jp-pwlab-sidebar';

  /**
   * The construction options of the sidebar.
   */
  export interface IOptions {
    model: JobsModel;
    details: ClusterDetails;
    /**
     * Open a job's detail.
     */
    onOpenJob: (id: string) => void;
    /**
     * Open the submit form, optionally on a cluster and partition.
     */
    onNewJob: (cluster?: string, partition?: string) => void;
    /**
     * Start a cluster that is switched off.
     */
    onStartCluster?: (cluster: string) => void;
  }
}
