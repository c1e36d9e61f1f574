import type { IJobsAPI } from '../api';
import type { ICluster, IJob, IJobQuery, IJobsResponse } from '../types';

/**
 * A job with plausible defaults, overridden by `fields`.
 */
export function makeJob(fields: Partial<IJob> & { id: string }): IJob {
  return {
    cluster: 'hpc',
    native_id: '100',
    name: 'job',
    state: 'QUEUED',
    raw_state: 'PENDING',
    reason: null,
    exit_code: null,
    terminal: false,
    submitted_at: '2025-01-01T10:00:00Z',
    started_at: null,
    ended_at: null,
    updated_at: '2025-01-01T10:00:00Z',
    resources: { partition: 'debug', nodes: 1 },
    stdout_path: '/home/u/job.out',
    stderr_path: '/home/u/job.err',
    working_dir: '/home/u',
    ...fields
  };
}

/**
 * A cluster with plausible defaults, overridden by `fields`.
 */
export function makeCluster(
  fields: Partial<ICluster> & { id: string }
): ICluster {
  return {
    name: fields.id,
    kind: 'slurm',
    status: 'ok',
    description: '',
    ...fields
  };
}

/**
 * An in-memory stand-in for the REST API.
 */
export class FakeAPI implements IJobsAPI {
  clusters: ICluster[] = [];
  jobs: IJob[] = [];
  failWith: Error | null = null;
  calls = { clusters: 0, jobs: 0 };
  queries: IJobQuery[] = [];
  /**
   * When set, `listJobs` waits for this promise before answering.
   */
  gate: Promise<void> | null = null;

  async listClusters(): Promise<ICluster[]> {
    this.calls.clusters++;
    if (this.failWith) {
      throw this.failWith;
    }
    return this.clusters.map(c => ({ ...c }));
  }

  async listJobs(query: IJobQuery = {}): Promise<IJobsResponse> {
    this.calls.jobs++;
    this.queries.push(query);
    const snapshot = this.jobs.map(j => ({ ...j }));
    if (this.gate) {
      await this.gate;
    }
    if (this.failWith) {
      throw this.failWith;
    }
    return { jobs: snapshot, next_cursor: null };
  }
}

/**
 * A promise with its resolve function.
 */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>(r => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * Wait for a number of milliseconds.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
