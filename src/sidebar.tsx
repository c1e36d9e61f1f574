import {
  ReactWidget,
  ToolbarButtonComponent,
  refreshIcon
} from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import { clusterIcon } from './icons';
import { clusterStatusClass, formatElapsed, stateBadgeClass } from './jobs';
import type { JobsModel } from './model';
import type { ICluster, IJob } from './types';

/**
 * The left-area panel listing clusters and jobs with their live state.
 */
export class JobsSidebar extends ReactWidget {
  constructor(options: JobsSidebar.IOptions) {
    super();
    this.model = options.model;
    this.id = JobsSidebar.ID;
    this.title.icon = clusterIcon;
    this.title.caption = 'HPC Jobs';
    this.addClass('jp-pwlab-sidebar');
    this.model.changed.connect(this._onModelChanged, this);
  }

  /**
   * The jobs model shown.
   */
  readonly model: JobsModel;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.changed.disconnect(this._onModelChanged, this);
    this._stopClock();
    super.dispose();
  }

  protected render(): React.ReactElement {
    return (
      <SidebarView
        model={this.model}
        now={Date.now()}
        onRefresh={() => void this.model.refresh()}
      />
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
  }
}

interface ISidebarViewProps {
  model: JobsModel;
  now: number;
  onRefresh: () => void;
}

function SidebarView(props: ISidebarViewProps): React.ReactElement {
  const { model, now, onRefresh } = props;
  return (
    <div className="jp-pwlab-body">
      <div className="jp-pwlab-header">
        <h2 className="jp-pwlab-title">HPC Jobs</h2>
        <ToolbarButtonComponent
          className="jp-pwlab-refresh"
          icon={refreshIcon}
          tooltip="Refresh clusters and jobs"
          onClick={onRefresh}
        />
      </div>
      {model.error !== null && (
        <div className="jp-pwlab-error" role="alert">
          {model.error}
        </div>
      )}
      <section className="jp-pwlab-section" aria-label="Clusters">
        <h3 className="jp-pwlab-section-title">Clusters</h3>
        {model.clusters.length === 0 ? (
          <p className="jp-pwlab-empty">
            {model.loaded ? 'No clusters configured.' : 'Loading…'}
          </p>
        ) : (
          <ul className="jp-pwlab-list jp-pwlab-cluster-list">
            {model.clusters.map(cluster => (
              <ClusterItem key={cluster.id} cluster={cluster} />
            ))}
          </ul>
        )}
      </section>
      <section className="jp-pwlab-section" aria-label="Jobs">
        <h3 className="jp-pwlab-section-title">Jobs</h3>
        {model.jobs.length === 0 ? (
          <p className="jp-pwlab-empty">
            {model.loaded ? 'No jobs yet.' : 'Loading…'}
          </p>
        ) : (
          <ul className="jp-pwlab-list jp-pwlab-job-list">
            {model.jobs.map(job => (
              <JobItem
                key={job.id}
                job={job}
                clusterName={model.getCluster(job.cluster)?.name}
                now={now}
              />
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

function ClusterItem(props: { cluster: ICluster }): React.ReactElement {
  const { cluster } = props;
  return (
    <li
      className="jp-pwlab-cluster"
      data-cluster-id={cluster.id}
      data-status={cluster.status}
      title={cluster.description || undefined}
    >
      <div className="jp-pwlab-cluster-line">
        <span className="jp-pwlab-cluster-name">{cluster.name}</span>
        <span className="jp-pwlab-cluster-kind">{cluster.kind}</span>
        <span
          className={`jp-pwlab-cluster-status ${clusterStatusClass(cluster.status)}`}
        >
          {cluster.status}
        </span>
      </div>
      {cluster.status !== 'ok' && cluster.status_message && (
        <div className="jp-pwlab-cluster-message">{cluster.status_message}</div>
      )}
    </li>
  );
}

interface IJobItemProps {
  job: IJob;
  clusterName: string | undefined;
  now: number;
}

function JobItem(props: IJobItemProps): React.ReactElement {
  const { job, clusterName, now } = props;
  const elapsed = formatElapsed(job, now);
  return (
    <li
      className="jp-pwlab-job"
      data-job-id={job.id}
      data-state={job.state}
      title={job.raw_state ? `Scheduler state: ${job.raw_state}` : undefined}
    >
      <div className="jp-pwlab-job-line">
        <span className="jp-pwlab-job-name">{job.name || job.id}</span>
        <span className={`jp-pwlab-state ${stateBadgeClass(job.state)}`}>
          {job.state}
        </span>
      </div>
      <div className="jp-pwlab-job-line jp-pwlab-job-meta">
        <span className="jp-pwlab-job-cluster">
          {clusterName ?? job.cluster}
        </span>
        {job.native_id !== null && (
          <span className="jp-pwlab-job-native-id">#{job.native_id}</span>
        )}
        {elapsed && <span className="jp-pwlab-job-elapsed">{elapsed}</span>}
        {job.exit_code !== null && (
          <span className="jp-pwlab-job-exit-code">exit {job.exit_code}</span>
        )}
      </div>
      {job.reason && <div className="jp-pwlab-job-reason">{job.reason}</div>}
    </li>
  );
}
