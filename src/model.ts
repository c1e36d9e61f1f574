import type { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import type { IJobsAPI } from './api';
import { APIError } from './api';
import {
  applyClusterEvent,
  applyJobEvent,
  isClusterStatusEvent,
  isJobStateEvent,
  isStale,
  mergeJobSnapshot,
  sortClusters,
  sortJobs
} from './jobs';
import {
  LIVE_STATES,
  type ICluster,
  type IEventEmission,
  type IJob,
  type IJobQuery
} from './types';

/**
 * A source of server push events, such as `serviceManager.events.stream`.
 */
export type EventSource = ISignal<unknown, IEventEmission>;

/**
 * A job whose state changed, with what it was before.
 */
export interface IJobStateChange {
  job: IJob;
  previous: IJob;
}

/**
 * Clusters and jobs as the server reports them, kept current by push events
 * with a poll as a fallback. Holds no DOM.
 *
 * The first load (and `refresh()`) reads every page of jobs up to `maxJobs`;
 * later polls only read the newest page and the live jobs, since finished jobs
 * never change, and look up the few live jobs that left both.
 */
export class JobsModel implements IDisposable {
  constructor(options: JobsModel.IOptions) {
    this._api = options.api;
    this._events = options.events ?? null;
    this._maxJobs = options.maxJobs ?? JobsModel.DEFAULT_MAX_JOBS;
    this._pageSize = options.pageSize ?? JobsModel.PAGE_SIZE;
    this._newestPage = options.newestPage ?? JobsModel.NEWEST_PAGE;
    this._events?.connect(this._onEvent, this);
    this._poll = new Poll({
      auto: options.autoStart ?? true,
      factory: () => this._load(!this._complete),
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
   * Emitted when a job already held changes state (not for new jobs).
   */
  get stateChanged(): ISignal<this, IJobStateChange> {
    return this._stateChanged;
  }

  /**
   * The API the model loads from.
   */
  get api(): IJobsAPI {
    return this._api;
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
   * The most jobs a full load reads.
   */
  get maxJobs(): number {
    return this._maxJobs;
  }
  set maxJobs(value: number) {
    if (value >= 1 && value !== this._maxJobs) {
      const grow = value > this._maxJobs;
      this._maxJobs = value;
      if (grow) {
        void this.refresh();
      }
    }
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
   * Put a job record the server answered with (submit, cancel, GET) into the
   * model, unless the model holds a newer one.
   */
  upsert(job: IJob): void {
    if (this._isDisposed) {
      return;
    }
    const current = this._jobs.get(job.id);
    if (current && isStale(job, current)) {
      return;
    }
    this._touched?.add(job.id);
    this._jobs.set(job.id, job);
    this._invalidate();
    this._emit();
    if (current && current.state !== job.state) {
      this._stateChanged.emit({ job, previous: current });
    }
  }

  /**
   * Load one job from the server into the model.
   */
  async fetchJob(id: string): Promise<IJob> {
    const job = await this._api.getJob(id);
    this.upsert(job);
    return this._jobs.get(id) ?? job;
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
      await this._load(true);
    } catch {
      // Recorded in `error` by `_load`.
    }
  }

  /**
   * Load what may have changed since the last full load, as a poll does: the
   * newest jobs and the live ones. Never rejects.
   */
  async refreshLive(): Promise<void> {
    try {
      await this._load(!this._complete);
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
   * Load clusters and jobs; concurrent calls share one request (a full load
   * asked for during an incremental one runs after it).
   */
  private _load(full: boolean): Promise<void> {
    if (this._loading !== null) {
      if (full && !this._loadingFull) {
        return this._loading
          .catch(() => undefined)
          .then(() => this._load(true));
      }
      return this._loading;
    }
    this._touched = new Set();
    this._loadingFull = full;
    this._loading = this._fetch(full).finally(() => {
      this._loading = null;
      this._touched = null;
      this._emit();
    });
    this._emit();
    return this._loading;
  }

  private async _fetch(full: boolean): Promise<void> {
    try {
      if (full) {
        await this._fetchAll();
      } else {
        await this._fetchChanges();
      }
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

  /**
   * Every job up to `maxJobs`, replacing what is held.
   */
  private async _fetchAll(): Promise<void> {
    const [clusters, jobs] = await Promise.all([
      this._api.listClusters(),
      this._pages({}, this._maxJobs)
    ]);
    if (this._isDisposed) {
      return;
    }
    this._clusters = new Map(clusters.map(c => [c.id, c]));
    const previous = this._jobs;
    this._jobs = mergeJobSnapshot(previous, jobs, this._touched ?? undefined);
    this._complete = true;
    this._announce(previous, jobs);
  }

  /**
   * The newest page and the live jobs; finished jobs never change.
   */
  private async _fetchChanges(): Promise<void> {
    const [clusters, newest, live] = await Promise.all([
      this._api.listClusters(),
      this._api.listJobs({ limit: this._newestPage }),
      this._pages({ state: [...LIVE_STATES] }, this._maxJobs)
    ]);
    if (this._isDisposed) {
      return;
    }
    this._clusters = new Map(clusters.map(c => [c.id, c]));
    const seen = new Map<string, IJob>();
    for (const job of [...newest.jobs, ...live]) {
      seen.set(job.id, job);
    }
    // Live jobs that are in neither list have ended (or were deleted).
    const gone = Array.from(this._jobs.values()).filter(
      job => !job.terminal && !seen.has(job.id)
    );
    if (gone.length > JobsModel.MAX_LOOKUPS) {
      await this._fetchAll();
      return;
    }
    const found = await Promise.all(
      gone.map(job =>
        this._api.getJob(job.id).catch(error => {
          if (error instanceof APIError && error.status === 404) {
            return null;
          }
          throw error;
        })
      )
    );
    if (this._isDisposed) {
      return;
    }
    const previous = this._jobs;
    const next = new Map(previous);
    gone.forEach((job, i) => {
      const record = found[i];
      if (record === null) {
        next.delete(job.id);
      } else {
        seen.set(record.id, record);
      }
    });
    for (const job of seen.values()) {
      const current = next.get(job.id);
      if (!current || !isStale(job, current)) {
        next.set(job.id, job);
      }
    }
    this._jobs = next;
    this._announce(previous, Array.from(seen.values()));
  }

  /**
   * Read pages of `GET jobs` until the end or `max` jobs.
   */
  private async _pages(query: IJobQuery, max: number): Promise<IJob[]> {
    const jobs: IJob[] = [];
    let cursor: string | undefined = undefined;
    do {
      const page = await this._api.listJobs({
        ...query,
        limit: Math.min(this._pageSize, max - jobs.length),
        ...(cursor ? { cursor } : {})
      });
      jobs.push(...page.jobs);
      cursor = page.next_cursor ?? undefined;
    } while (cursor && jobs.length < max && !this._isDisposed);
    return jobs;
  }

  /**
   * Emit `stateChanged` for held jobs that a load changed.
   */
  private _announce(previous: Map<string, IJob>, loaded: IJob[]): void {
    const changes: IJobStateChange[] = [];
    for (const job of loaded) {
      const before = previous.get(job.id);
      const now = this._jobs.get(job.id);
      if (before && now && before.state !== now.state) {
        changes.push({ job: now, previous: before });
      }
    }
    this._invalidate();
    for (const change of changes) {
      this._stateChanged.emit(change);
    }
  }

  private _onEvent(_sender: unknown, event: IEventEmission): void {
    if (this._isDisposed) {
      return;
    }
    let changed = false;
    let change: IJobStateChange | null = null;
    if (isJobStateEvent(event)) {
      this._touched?.add(event.id);
      const previous = this._jobs.get(event.id);
      changed = applyJobEvent(this._jobs, event);
      const job = this._jobs.get(event.id)!;
      if (changed && previous && previous.state !== job.state) {
        change = { job, previous };
      }
    } else if (isClusterStatusEvent(event)) {
      changed = applyClusterEvent(this._clusters, event);
    }
    if (changed) {
      this._invalidate();
      this._emit();
    }
    if (change) {
      this._stateChanged.emit(change);
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
  private _maxJobs: number;
  private _pageSize: number;
  private _newestPage: number;
  private _complete = false;
  private _loadingFull = false;
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
  private _stateChanged = new Signal<this, IJobStateChange>(this);
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
     * The most jobs a full load reads.
     */
    maxJobs?: number;
    /**
     * Jobs per `GET jobs` request.
     */
    pageSize?: number;
    /**
     * How many of the newest jobs a poll reads.
     */
    newestPage?: number;
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
   * The default for `maxJobs`.
   */
  export const DEFAULT_MAX_JOBS = 10_000;

  /**
   * The largest page the server gives.
   */
  export const PAGE_SIZE = 1000;

  /**
   * How many of the newest jobs a poll reads (to see jobs submitted
   * elsewhere while an event was missed).
   */
  export const NEWEST_PAGE = 100;

  /**
   * How many ended jobs a poll looks up one by one before it reloads all.
   */
  export const MAX_LOOKUPS = 25;
}
