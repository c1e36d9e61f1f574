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
  const usage = job.usage?.summary ? ` — ${job.usage.summary}` : '';
  return {
    kind,
    message: `${label} ${what}${reason}${usage}`,
    jobId: job.id
  };
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
 * Shows a notice; a string it returns is the handle to update it with later.
 */
export type NotifyFunction = (notice: IJobNotice) => unknown;

/**
 * Announces jobs that end, through `notify`, while `enabled`.
 *
 * What a job used is often measured a little after it ends (the scheduler's
 * accounting, the next poll). A job that ran but has no usage yet is
 * announced after at most `usageWait` ms, as soon as the usage arrives; when
 * it arrives later still (within `usageWindow` ms), the notice is updated.
 */
export class JobEndNotifier implements IDisposable {
  constructor(
    private readonly _model: JobsModel,
    private readonly _notify: NotifyFunction,
    options: JobEndNotifier.IOptions = {}
  ) {
    this._update = options.update ?? null;
    this._usageWait = options.usageWait ?? JobEndNotifier.USAGE_WAIT;
    this._usageWindow = options.usageWindow ?? JobEndNotifier.USAGE_WINDOW;
    _model.stateChanged.connect(this._onChange, this);
    _model.changed.connect(this._onModelChanged, this);
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
      this._model.changed.disconnect(this._onModelChanged, this);
      for (const pending of this._pending.values()) {
        window.clearTimeout(pending.timer);
      }
      this._pending.clear();
    }
  }

  private _onChange(_: JobsModel, change: IJobStateChange): void {
    if (!this.enabled) {
      return;
    }
    const notice = jobEndNotice(change);
    if (!notice) {
      return;
    }
    const { job } = change;
    if (job.usage || !job.started_at || this._usageWait <= 0) {
      // Measured already, or nothing ran that could be measured.
      const handle = this._show(notice);
      if (!job.usage && job.started_at && this._update && handle !== null) {
        this._watch(change, handle, true);
      }
      return;
    }
    this._watch(change, null, false);
  }

  /**
   * Wait for the usage of an ended job: hold the notice (`shown` false), or
   * update the shown one (`shown` true, with its handle).
   */
  private _watch(
    change: IJobStateChange,
    handle: string | null,
    shown: boolean
  ): void {
    const id = change.job.id;
    const existing = this._pending.get(id);
    if (existing) {
      window.clearTimeout(existing.timer);
    }
    const pending: Private.IPending = {
      change,
      handle,
      shown,
      timer: 0
    };
    pending.timer = window.setTimeout(
      () => this._expire(id),
      shown ? this._usageWindow : this._usageWait
    );
    this._pending.set(id, pending);
  }

  /**
   * Nothing measured in time: announce without usage, then keep watching
   * for a while to update the notice.
   */
  private _expire(id: string): void {
    const pending = this._pending.get(id);
    this._pending.delete(id);
    if (!pending || pending.shown || this._isDisposed) {
      return;
    }
    const notice = jobEndNotice(pending.change);
    if (!notice) {
      return;
    }
    const handle = this._show(notice);
    if (this._update && handle !== null) {
      this._watch(pending.change, handle, true);
    }
  }

  /**
   * Show a notice; its handle, if `notify` gave one.
   */
  private _show(notice: IJobNotice): string | null {
    const handle = this._notify(notice);
    return typeof handle === 'string' ? handle : null;
  }

  private _onModelChanged(): void {
    for (const [id, pending] of Array.from(this._pending.entries())) {
      const job = this._model.getJob(id);
      if (!job?.usage) {
        continue;
      }
      this._pending.delete(id);
      window.clearTimeout(pending.timer);
      const notice = jobEndNotice({ job, previous: pending.change.previous });
      if (!notice) {
        continue;
      }
      if (!pending.shown) {
        if (this.enabled) {
          this._notify(notice);
        }
      } else if (pending.handle !== null && this._update) {
        this._update(pending.handle, notice);
      }
    }
  }

  private _isDisposed = false;
  private _update: ((handle: string, notice: IJobNotice) => void) | null;
  private _usageWait: number;
  private _usageWindow: number;
  private _pending = new Map<string, Private.IPending>();
}

/**
 * The namespace for `JobEndNotifier` statics.
 */
export namespace JobEndNotifier {
  export interface IOptions {
    /**
     * Update a shown notice (e.g. `Notification.update`), by the handle
     * `notify` returned.
     */
    update?: (handle: string, notice: IJobNotice) => void;
    /**
     * How long to hold the notice of a job that ran, for its usage (ms).
     */
    usageWait?: number;
    /**
     * How long after that a shown notice is still updated (ms).
     */
    usageWindow?: number;
  }

  /**
   * The default `usageWait`: 4 s.
   */
  export const USAGE_WAIT = 4000;

  /**
   * The default `usageWindow`: 2 min.
   */
  export const USAGE_WINDOW = 2 * 60 * 1000;
}

namespace Private {
  /**
   * An ended job whose usage is awaited.
   */
  export interface IPending {
    change: IJobStateChange;
    /**
     * The shown notice's handle, when shown.
     */
    handle: string | null;
    shown: boolean;
    timer: number;
  }
}
