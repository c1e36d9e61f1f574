import type { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import type { IJobsAPI } from './api';
import {
  applyClusterEvent,
  applyJobEvent,
  isClusterStatusEvent,
  isJobStateEvent,
  mergeJobSnapshot,
  sortClusters,
  sortJobs
} from './jobs';
import type { ICluster, IEventEmission, IJob } from './types';

/**
 * A source of server push events, such as `serviceManager.events.stream`.
 */
export type EventSource = ISignal<unknown, IEventEmission>;

/**
 * Clusters and jobs as the server reports them, kept current by push events
 * with a poll as a fallback. Holds no DOM.
 */
export class JobsModel implements IDisposable {
  constructor(options: JobsModel.IOptions) {
    this._api = options.api;
    this._events = options.events ?? null;
    this._jobLimit = options.jobLimit ?? JobsModel.DEFAULT_JOB_LIMIT;
    this._events?.connect(this._onEvent, this);
    this._poll = new Poll({
      auto: options.autoStart ?? true,
      factory: () => this._load(),
      frequency: {
        interval: options.pollInterval ?? JobsModel.DEFAULT_POLL_INTERVAL,
        backoff: true,
        max: JobsModel.MAX_POLL_INTERVAL
      },
      name: 'parallelworks-lab:jobs',
      standby: 'when-hidden'
    });
  }

  /**
   * Emitted whenever clusters, jobs or the load status change.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Clusters, sorted by name.
   */
  get clusters(): readonly ICluster[] {
    if (this._sortedClusters === null) {
      this._sortedClusters = sortClusters(this._clusters.values());
    }
    return this._sortedClusters;
  }

  /**
   * Jobs in display order (live first, newest first).
   */
  get jobs(): readonly IJob[] {
    if (this._sortedJobs === null) {
      this._sortedJobs = sortJobs(this._jobs.values());
    }
    return this._sortedJobs;
  }

  /**
   * The message of the last failed load, or null after a successful one.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * Whether the first load has completed (successfully or not).
   */
  get loaded(): boolean {
    return this._loaded;
  }

  /**
   * Whether a load is in flight.
   */
  get loading(): boolean {
    return this._loading !== null;
  }

  /**
   * The fallback poll interval in milliseconds.
   */
  get pollInterval(): number {
    return this._poll.frequency.interval;
  }
  set pollInterval(milliseconds: number) {
    if (!(milliseconds > 0) || milliseconds === this.pollInterval) {
      return;
    }
    this._poll.frequency = { ...this._poll.frequency, interval: milliseconds };
  }

  /**
   * Whether the model has been disposed.
   */
  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * A job by id.
   */
  getJob(id: string): IJob | undefined {
    return this._jobs.get(id);
  }

  /**
   * A cluster by id.
   */
  getCluster(id: string): ICluster | undefined {
    return this._clusters.get(id);
  }

  /**
   * Start the fallback poll (only needed with `autoStart: false`).
   */
  start(): void {
    void this._poll.start();
  }

  /**
   * Load clusters and jobs now. Never rejects: a failure is kept in `error`.
   */
  async refresh(): Promise<void> {
    try {
      await this._load();
    } catch {
      // Recorded in `error` by `_load`.
    }
  }

  /**
   * Stop polling and listening to events.
   */
  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._events?.disconnect(this._onEvent, this);
    this._poll.dispose();
    Signal.clearData(this);
  }

  /**
   * Load clusters and jobs; concurrent calls share one request.
   */
  private _load(): Promise<void> {
    if (this._loading === null) {
      this._touched = new Set();
      this._loading = this._fetch().finally(() => {
        this._loading = null;
        this._touched = null;
        this._emit();
      });
      this._emit();
    }
    return this._loading;
  }

  private async _fetch(): Promise<void> {
    try {
      const [clusters, page] = await Promise.all([
        this._api.listClusters(),
        this._api.listJobs({ limit: this._jobLimit })
      ]);
      if (this._isDisposed) {
        return;
      }
      this._clusters = new Map(clusters.map(c => [c.id, c]));
      this._jobs = mergeJobSnapshot(
        this._jobs,
        page.jobs,
        this._touched ?? undefined
      );
      this._error = null;
    } catch (error) {
      if (this._isDisposed) {
        return;
      }
      this._error = error instanceof Error ? error.message : String(error);
      throw error;
    } finally {
      this._loaded = true;
      this._invalidate();
    }
  }

  private _onEvent(_sender: unknown, event: IEventEmission): void {
    if (this._isDisposed) {
      return;
    }
    let changed = false;
    if (isJobStateEvent(event)) {
      this._touched?.add(event.id);
      changed = applyJobEvent(this._jobs, event);
    } else if (isClusterStatusEvent(event)) {
      changed = applyClusterEvent(this._clusters, event);
    }
    if (changed) {
      this._invalidate();
      this._emit();
    }
  }

  private _invalidate(): void {
    this._sortedJobs = null;
    this._sortedClusters = null;
  }

  private _emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  private _api: IJobsAPI;
  private _events: EventSource | null;
  private _jobLimit: number;
  private _poll: Poll;
  private _clusters = new Map<string, ICluster>();
  private _jobs = new Map<string, IJob>();
  private _sortedClusters: ICluster[] | null = null;
  private _sortedJobs: IJob[] | null = null;
  private _error: string | null = null;
  private _loaded = false;
  private _loading: Promise<void> | null = null;
  private _touched: Set<string> | null = null;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

/**
 * The namespace for `JobsModel` statics.
 */
export namespace JobsModel {
  /**
   * The construction options of a jobs model.
   */
  export interface IOptions {
    /**
     * The REST calls to load clusters and jobs with.
     */
    api: IJobsAPI;
    /**
     * Push events, e.g. `app.serviceManager.events.stream`.
     */
    events?: EventSource;
    /**
     * The fallback poll interval in milliseconds.
     */
    pollInterval?: number;
    /**
     * How many jobs to load.
     */
    jobLimit?: number;
    /**
     * Whether to start polling at once; defaults to true.
     */
    autoStart?: boolean;
  }

  /**
   * The default fallback poll interval: 10 s.
   */
  export const DEFAULT_POLL_INTERVAL = 10 * 1000;

  /**
   * The longest interval the poll backs off to after errors: 5 min.
   */
  export const MAX_POLL_INTERVAL = 5 * 60 * 1000;

  /**
   * The default number of jobs to load.
   */
  export const DEFAULT_JOB_LIMIT = 200;
}
