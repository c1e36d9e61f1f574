import { DisposableDelegate, type IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import type { IJobsAPI } from './api';
import type { IClusterDetail } from './types';

/**
 * Cluster details (partitions with limits and live availability, and the
 * form's options schema), loaded on demand and refreshed while something
 * watches them. Holds no DOM.
 */
export class ClusterDetails implements IDisposable {
  constructor(options: ClusterDetails.IOptions) {
    this._api = options.api;
    this._poll = new Poll({
      auto: false,
      factory: () => this._refreshWatched(),
      frequency: {
        interval: options.interval ?? ClusterDetails.DEFAULT_INTERVAL,
        backoff: true,
        max: 5 * 60 * 1000
      },
      name: 'parallelworks-lab:cluster-details',
      standby: 'when-hidden'
    });
  }

  /**
   * Emitted when a detail or an error changes.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * The last loaded detail of a cluster.
   */
  get(id: string): IClusterDetail | undefined {
    return this._details.get(id);
  }

  /**
   * Why the last load of a cluster failed, or null.
   */
  error(id: string): string | null {
    return this._errors.get(id) ?? null;
  }

  /**
   * Whether a load of the cluster is in flight.
   */
  isLoading(id: string): boolean {
    return this._pending.has(id);
  }

  /**
   * The detail of a cluster: the loaded one unless `fresh`, else from the
   * server (concurrent calls share one request).
   */
  fetch(id: string, fresh = false): Promise<IClusterDetail> {
    const known = this._details.get(id);
    if (known && !fresh) {
      return Promise.resolve(known);
    }
    let pending = this._pending.get(id);
    if (!pending) {
      pending = this._api
        .getCluster(id)
        .then(
          detail => {
            this._details.set(id, detail);
            this._errors.delete(id);
            return detail;
          },
          (error: unknown) => {
            this._errors.set(
              id,
              error instanceof Error ? error.message : String(error)
            );
            throw error;
          }
        )
        .finally(() => {
          this._pending.delete(id);
          this._emit();
        });
      this._pending.set(id, pending);
      this._emit();
    }
    return pending;
  }

  /**
   * Keep a cluster's detail fresh until the returned handle is disposed.
   */
  watch(id: string): IDisposable {
    this._watched.set(id, (this._watched.get(id) ?? 0) + 1);
    void this.fetch(id, true).catch(() => undefined);
    void this._poll.start();
    return new DisposableDelegate(() => {
      const count = (this._watched.get(id) ?? 1) - 1;
      if (count > 0) {
        this._watched.set(id, count);
      } else {
        this._watched.delete(id);
      }
      if (this._watched.size === 0) {
        void this._poll.stop();
      }
    });
  }

  /**
   * Reload every watched cluster now.
   */
  async refresh(): Promise<void> {
    await this._refreshWatched().catch(() => undefined);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _refreshWatched(): Promise<void> {
    await Promise.all(
      Array.from(this._watched.keys(), id => this.fetch(id, true))
    );
  }

  private _emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  private _api: IJobsAPI;
  private _poll: Poll;
  private _details = new Map<string, IClusterDetail>();
  private _errors = new Map<string, string>();
  private _pending = new Map<string, Promise<IClusterDetail>>();
  private _watched = new Map<string, number>();
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

/**
 * The namespace for `ClusterDetails` statics.
 */
export namespace ClusterDetails {
  export interface IOptions {
    api: IJobsAPI;
    /**
     * How often watched clusters are reloaded, in milliseconds.
     */
    interval?: number;
  }

  /**
   * Partition availability changes slowly: 30 s.
   */
  export const DEFAULT_INTERVAL = 30 * 1000;
}
