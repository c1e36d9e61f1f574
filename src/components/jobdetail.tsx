import { ReactWidget } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import type { IJobsAPI } from '../api';
import { isWaiting } from '../guidance';
import { formatElapsed, formatTimeLeft, parseTime, stateLabel } from '../jobs';
import { LogFollower } from '../logs';
import type { IJobStateChange, JobsModel } from '../model';
import { CommandIDs } from '../tokens';
import type { IJob, IPartitionLoad, LogStream } from '../types';
import { formatMemory, formatWalltime } from '../units';
import { EfficiencyCard } from './efficiency';
import { LogView } from './logview';
import { ProvenanceSection } from './provenance';
import { StateBadge } from './statebadge';
import { WaitingInfo } from './waiting';

/**
 * The states in which a job has written nothing yet.
 */
const NOT_STARTED = ['SUBMITTING', 'QUEUED', 'HELD'];

/**
 * How often a waiting job is read again while its detail is shown (for the
 * start estimate and the partition load, which the server caches as long).
 */
const WAITING_REFRESH = 60_000;

/**
 * A job's detail: every field, the actions, and its output followed live.
 */
export class JobDetailPanel extends ReactWidget {
  constructor(options: JobDetailPanel.IOptions) {
    super();
    this.jobId = options.jobId;
    this._model = options.model;
    this._commands = options.commands;
    this.id = `jp-pwlab-job-${options.jobId}`;
    this.addClass('jp-pwlab-detail');
    this.node.dataset.pwlabJob = options.jobId;
    const make = (stream: LogStream) =>
      new LogFollower({
        api: options.api,
        jobId: options.jobId,
        stream,
        autoStart: false,
        interval: options.logInterval
      });
    this._followers = { stdout: make('stdout'), stderr: make('stderr') };
    for (const follower of Object.values(this._followers)) {
      follower.changed.connect(this._onLog, this);
    }
    this._model.changed.connect(this._onModelChanged, this);
    this._model.stateChanged.connect(this._onStateChanged, this);
    this._commands.commandChanged.connect(this._onModelChanged, this);
    this._syncTitle();
    void this.load();
  }

  readonly jobId: string;

  /**
   * The job as the model holds it.
   */
  get job(): IJob | undefined {
    return this._model.getJob(this.jobId);
  }

  /**
   * Load the full job record (events carry only part of it).
   */
  async load(): Promise<void> {
    this._fetchedAt = Date.now();
    try {
      const job = await this._model.fetchJob(this.jobId);
      // Only `GET jobs/{id}` carries the partition load: keep it here.
      this._partitionLoad = job.partition_load ?? null;
      this._error = null;
    } catch (error) {
      this._error = error instanceof Error ? error.message : String(error);
    }
    this._syncTitle();
    this._syncFollowers();
    this.update();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.changed.disconnect(this._onModelChanged, this);
    this._model.stateChanged.disconnect(this._onStateChanged, this);
    this._commands.commandChanged.disconnect(this._onModelChanged, this);
    for (const follower of Object.values(this._followers)) {
      follower.dispose();
    }
    window.clearInterval(this._clock);
    super.dispose();
  }

  protected render(): React.ReactElement {
    const job = this.job;
    if (!job) {
      return (
        <div className="jp-pwlab-detail-body">
          {this._error ? (
            <div className="jp-pwlab-error" role="alert">
              {this._error}
            </div>
          ) : (
            <p className="jp-pwlab-empty">Loading…</p>
          )}
        </div>
      );
    }
    return (
      <JobDetailView
        job={job}
        tasks={this._tasks(job)}
        now={Date.now()}
        partitionLoad={this._partitionLoad}
        error={this._error}
        commands={this._commands}
        followers={this._followers}
        stream={this._stream}
        onStreamChange={stream => {
          this._stream = stream;
          this._syncFollowers();
          this.update();
        }}
        idPrefix={this.id}
      />
    );
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._syncFollowers();
    this.update();
  }

  protected onBeforeHide(msg: Message): void {
    super.onBeforeHide(msg);
    this._syncFollowers(false);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._syncFollowers();
    this._clock = window.setInterval(() => {
      const job = this.job;
      if (!this.isVisible || !job || job.terminal) {
        return;
      }
      if (isWaiting(job)) {
        if (Date.now() - this._fetchedAt >= WAITING_REFRESH) {
          void this.load();
        } else if (job.estimated_start) {
          this.update();
        }
      } else if (job.started_at) {
        this.update();
      }
    }, 1000);
  }

  protected onBeforeDetach(msg: Message): void {
    this._syncFollowers(false);
    window.clearInterval(this._clock);
    super.onBeforeDetach(msg);
  }

  /**
   * Follow the shown stream while the panel is visible and the job has
   * started; the other stream waits.
   */
  private _syncFollowers(visible = this.isVisible): void {
    const job = this.job;
    const started = job !== undefined && !NOT_STARTED.includes(job.state);
    for (const [stream, follower] of Object.entries(this._followers)) {
      if (visible && started && stream === this._stream) {
        follower.start();
      } else {
        follower.stop();
      }
    }
  }

  private _tasks(job: IJob): IJob[] {
    if (job.parent_id) {
      return [];
    }
    return this._model.jobs.filter(j => j.parent_id === job.id);
  }

  private _syncTitle(): void {
    const job = this.job;
    this.title.label = job
      ? `Job ${job.name || job.id}${job.native_id ? ` #${job.native_id}` : ''}`
      : `Job ${this.jobId}`;
    this.title.caption = job
      ? `${job.name} — ${stateLabel(job.state)} on ${job.cluster}`
      : this.jobId;
  }

  private _onModelChanged(): void {
    this._syncTitle();
    if (this.isVisible) {
      this.update();
    }
  }

  private _onStateChanged(_: JobsModel, change: IJobStateChange): void {
    if (change.job.id !== this.jobId) {
      return;
    }
    this._syncFollowers();
    // Read what the job wrote last, and the final record (end time, exit).
    void this._followers[this._stream].refresh();
    if (change.job.terminal) {
      void this.load();
    }
  }

  private _onLog(): void {
    if (this.isVisible) {
      this.update();
    }
  }

  private _model: JobsModel;
  private _commands: CommandRegistry;
  private _followers: Record<LogStream, LogFollower>;
  private _stream: LogStream = 'stdout';
  private _error: string | null = null;
  private _clock = 0;
  private _fetchedAt = 0;
  private _partitionLoad: IPartitionLoad | null = null;
}

/**
 * The namespace for `JobDetailPanel` statics.
 */
export namespace JobDetailPanel {
  export interface IOptions {
    jobId: string;
    model: JobsModel;
    api: IJobsAPI;
    /**
     * Runs the actions (cancel, hold, …), which take `{ id }`.
     */
    commands: CommandRegistry;
    /**
     * Milliseconds between log reads while the job runs.
     */
    logInterval?: number;
  }
}

/**
 * The actions of the detail, in order.
 */
const ACTIONS: { command: string; action: string }[] = [
  { command: CommandIDs.cancelJob, action: 'cancel' },
  { command: CommandIDs.holdJob, action: 'hold' },
  { command: CommandIDs.releaseJob, action: 'release' },
  { command: CommandIDs.resubmitJob, action: 'resubmit' },
  { command: CommandIDs.copyJobId, action: 'copy-id' },
  { command: CommandIDs.insertJobCode, action: 'insert-code' }
];

interface IJobDetailViewProps {
  job: IJob;
  tasks: IJob[];
  now: number;
  partitionLoad: IPartitionLoad | null;
  error: string | null;
  commands: CommandRegistry;
  followers: Record<LogStream, LogFollower>;
  stream: LogStream;
  onStreamChange: (stream: LogStream) => void;
  idPrefix: string;
}

function JobDetailView(props: IJobDetailViewProps): React.ReactElement {
  const { job, commands, now } = props;
  const args = { id: job.id };
  const r = job.resources ?? {};
  const rows: [string, React.ReactNode][] = [
    ['State', <StateBadge key="s" state={job.state} />],
    ['Scheduler state', job.raw_state],
    // A waiting job's reason is explained above the fields.
    ['Reason', isWaiting(job) ? null : job.reason],
    ['Exit code', job.exit_code],
    ['Cluster', job.cluster],
    ['Partition', r.partition],
    ['Account', r.account],
    ['QOS', r.qos],
    ['Scheduler id', job.native_id],
    ['Job id', job.id],
    ['Array job', job.parent_id],
    ['Array task', job.array_task],
    ['Submitted', formatTime(job.submitted_at)],
    ['Started', formatTime(job.started_at)],
    ['Ended', formatTime(job.ended_at)],
    ['Elapsed', formatElapsed(job, now)],
    ['Time left', formatTimeLeft(job, now)],
    ['Nodes', r.nodes],
    ['Tasks', r.ntasks],
    ['CPUs per task', r.cpus_per_task],
    ['GPUs', r.gpus],
    [
      'Memory per node',
      typeof r.memory_mb === 'number' ? formatMemory(r.memory_mb) : null
    ],
    [
      'Walltime',
      typeof r.time_limit_minutes === 'number'
        ? formatWalltime(r.time_limit_minutes)
        : null
    ],
    ['Array', r.array],
    ['Working directory', job.working_dir],
    ['Standard output', job.stdout_path],
    ['Standard error', job.stderr_path]
  ];
  return (
    <div
      className="jp-pwlab-detail-body"
      data-pwlab-job-id={job.id}
      data-state={job.state}
    >
      <div className="jp-pwlab-detail-header">
        <h2 className="jp-pwlab-detail-title">{job.name || job.id}</h2>
        <StateBadge state={job.state} />
      </div>
      <div className="jp-pwlab-actions" role="toolbar" aria-label="Job actions">
        {ACTIONS.map(({ command, action }) => (
          <button
            key={action}
            type="button"
            className={`jp-pwlab-action${action === 'cancel' ? ' jp-pwlab-action-danger' : ''}`}
            data-pwlab-action={action}
            disabled={!commands.isEnabled(command, args)}
            title={commands.caption(command, args)}
            onClick={() => void commands.execute(command, args)}
          >
            {commands.label(command, { ...args, short: true })}
          </button>
        ))}
      </div>
      {props.error && (
        <div className="jp-pwlab-error" role="alert">
          {props.error}
        </div>
      )}
      {isWaiting(job) && (
        <WaitingInfo job={job} now={now} load={props.partitionLoad} />
      )}
      {job.terminal && (job.usage || job.started_at) && (
        <EfficiencyCard usage={job.usage ?? null} />
      )}
      <dl className="jp-pwlab-fields">
        {rows
          .filter(
            ([, value]) => value !== null && value !== undefined && value !== ''
          )
          .map(([label, value]) => (
            <React.Fragment key={label}>
              <dt>{label}</dt>
              <dd data-pwlab-detail={label}>{value}</dd>
            </React.Fragment>
          ))}
      </dl>
      <ProvenanceSection provenance={job.provenance} commands={commands} />
      {props.tasks.length > 0 && (
        <TaskList tasks={props.tasks} commands={commands} />
      )}
      <LogView
        followers={props.followers}
        stream={props.stream}
        onStreamChange={props.onStreamChange}
        live={!job.terminal}
        waiting={NOT_STARTED.includes(job.state)}
        idPrefix={props.idPrefix}
      />
    </div>
  );
}

function TaskList(props: {
  tasks: IJob[];
  commands: CommandRegistry;
}): React.ReactElement {
  const shown = props.tasks.slice(0, 200);
  return (
    <section className="jp-pwlab-tasks" aria-label="Array tasks">
      <h3 className="jp-pwlab-section-title">
        Array tasks ({props.tasks.length})
      </h3>
      <ul className="jp-pwlab-list">
        {shown.map(task => (
          <li key={task.id} data-job-id={task.id}>
            <button
              type="button"
              className="jp-pwlab-link"
              onClick={() =>
                void props.commands.execute(CommandIDs.openJob, { id: task.id })
              }
            >
              {task.array_task ?? task.native_id ?? task.id}
            </button>{' '}
            <StateBadge state={task.state} />
          </li>
        ))}
      </ul>
      {props.tasks.length > shown.length && (
        <p className="jp-pwlab-empty">
          and {props.tasks.length - shown.length} more in the jobs table.
        </p>
      )}
    </section>
  );
}

/**
 * An ISO time in the browser's locale, or '' when unknown.
 */
function formatTime(value: string | null): string {
  const time = parseTime(value);
  return time === null ? '' : new Date(time).toLocaleString();
}
