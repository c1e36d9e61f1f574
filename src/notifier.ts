import type { IDisposable } from '@lumino/disposable';

import { stateLabel } from './jobs';
import type { IJobStateChange, JobsModel } from './model';
import type { IJob } from './types';

/**
 * The kind of a notification, as JupyterLab's `Notification` names them.
 */
export type NotificationKind = 'success' | 'info' | 'warning' | 'error';

/**
 * A notification about a job that ended.
 */
export interface IJobNotice {
  kind: NotificationKind;
  message: string;
  jobId: string;
}

/**
 * The notice for a state change, or null when the change is not a job ending
 * (only a live job that becomes terminal is announced, never an old one).
 */
export function jobEndNotice(change: IJobStateChange): IJobNotice | null {
  const { job, previous } = change;
  if (!job.terminal || previous.terminal) {
    return null;
  }
  const label = describeJob(job);
  let kind: NotificationKind;
  let what: string;
  switch (job.state) {
    case 'COMPLETED':
      kind = 'success';
      what = 'completed';
      break;
    case 'CANCELLED':
      kind = 'info';
      what = 'was cancelled';
      break;
    case 'PREEMPTED':
      kind = 'warning';
      what = 'was preempted';
      break;
    case 'FAILED':
      kind = 'error';
      what =
        job.exit_code !== null
          ? `failed with exit code ${job.exit_code}`
          : 'failed';
      break;
    default:
      kind = 'error';
      what = `ended: ${stateLabel(job.state)}`;
  }
  const reason =
    job.reason && job.state !== 'COMPLETED' ? ` (${job.reason})` : '';
  return { kind, message: `${label} ${what}${reason}`, jobId: job.id };
}

/**
 * A job in one line: `Job "train" (#17 on local)`.
 */
export function describeJob(job: IJob): string {
  const where = [job.native_id ? `#${job.native_id}` : '', job.cluster]
    .filter(Boolean)
    .join(' on ');
  return `Job "${job.name || job.id}"${where ? ` (${where})` : ''}`;
}

/**
 * Announces jobs that end, through `notify`, while `enabled`.
 */
export class JobEndNotifier implements IDisposable {
  constructor(
    private readonly _model: JobsModel,
    private readonly _notify: (notice: IJobNotice) => void
  ) {
    _model.stateChanged.connect(this._onChange, this);
  }

  /**
   * Whether notices are shown (the `notifications` setting).
   */
  enabled = true;

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (!this._isDisposed) {
      this._isDisposed = true;
      this._model.stateChanged.disconnect(this._onChange, this);
    }
  }

  private _onChange(_: JobsModel, change: IJobStateChange): void {
    if (!this.enabled) {
      return;
    }
    const notice = jobEndNotice(change);
    if (notice) {
      this._notify(notice);
    }
  }

  private _isDisposed = false;
}
