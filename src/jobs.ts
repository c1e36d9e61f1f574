/**
 * Pure helpers on jobs and clusters: no DOM, no server.
 */
import {
  CLUSTER_STATUS_SCHEMA,
  ClusterStatus,
  ICluster,
  IClusterStatusEvent,
  IEventEmission,
  IJob,
  IJobStateEvent,
  JOB_EVENT_FIELDS,
  JOB_STATES,
  JOB_STATE_SCHEMA,
  JobState,
  TERMINAL_STATES
} from './types';

const CLUSTER_STATUSES: readonly ClusterStatus[] = [
  'ok',
  'unreachable',
  'auth_rejected',
  'rate_limited',
  'error',
  'off',
  'starting',
  'stopping',
  'degraded',
  'removed'
];

/**
 * Whether a value is one of the normalized job states.
 */
export function isJobState(value: unknown): value is JobState {
  return JOB_STATES.includes(value as JobState);
}

/**
 * Whether a job in this state will never change again.
 */
export function isTerminalState(state: string): boolean {
  return TERMINAL_STATES.includes(state as JobState);
}

/**
 * Whether an event-bus emission is a well-formed job state event.
 */
export function isJobStateEvent(
  event: IEventEmission
): event is IJobStateEvent {
  return (
    event.schema_id === JOB_STATE_SCHEMA &&
    typeof event.id === 'string' &&
    event.id.length > 0
  );
}

/**
 * Whether an event-bus emission is a well-formed cluster status event.
 */
export function isClusterStatusEvent(
  event: IEventEmission
): event is IEventEmission & IClusterStatusEvent {
  return (
    event.schema_id === CLUSTER_STATUS_SCHEMA &&
    typeof event.cluster === 'string' &&
    CLUSTER_STATUSES.includes(event.status as ClusterStatus)
  );
}

/**
 * Milliseconds since the epoch of an ISO 8601 time, or null.
 */
export function parseTime(value: string | null | undefined): number | null {
  if (!value) {
    return null;
  }
  const time = Date.parse(value);
  return Number.isNaN(time) ? null : time;
}

/**
 * Whether `candidate` is older than `current`, judged by `updated_at`.
 *
 * A record without a parseable `updated_at` is never considered stale, so an
 * update is applied rather than lost.
 */
export function isStale(
  candidate: Pick<IJob, 'updated_at'> | Partial<Pick<IJob, 'updated_at'>>,
  current: Pick<IJob, 'updated_at'>
): boolean {
  const next = parseTime(candidate.updated_at);
  const previous = parseTime(current.updated_at);
  return next !== null && previous !== null && next < previous;
}

/**
 * A job with every field empty, for an event about a job not loaded yet.
 */
export function emptyJob(id: string): IJob {
  return {
    id,
    cluster: '',
    native_id: null,
    name: '',
    state: 'UNKNOWN',
    raw_state: null,
    reason: null,
    exit_code: null,
    terminal: false,
    submitted_at: null,
    started_at: null,
    ended_at: null,
    updated_at: null,
    resources: {},
    stdout_path: null,
    stderr_path: null,
    working_dir: null,
    parent_id: null,
    array_task: null
  };
}

/**
 * The job after a state event: the fields the event carries replace those of
 * `current` (or of an empty job when the job is unknown); others are kept.
 */
export function mergeJobEvent(
  current: IJob | undefined,
  event: IJobStateEvent
): IJob {
  const next: IJob = { ...(current ?? emptyJob(event.id)) };
  const target = next as unknown as Record<string, unknown>;
  for (const field of JOB_EVENT_FIELDS) {
    if (event[field] !== undefined) {
      target[field] = event[field];
    }
  }
  if (!isJobState(next.state)) {
    next.state = 'UNKNOWN';
  }
  if (event.terminal === undefined && event.state !== undefined) {
    next.terminal = isTerminalState(next.state);
  }
  return next;
}

/**
 * Apply a job state event to a map of jobs by id.
 *
 * An unknown job is inserted; a known one is updated field by field unless the
 * event is older than what the map holds. The stored job is replaced by a new
 * object, never mutated.
 *
 * @returns whether the map changed
 */
export function applyJobEvent(
  jobs: Map<string, IJob>,
  event: IJobStateEvent
): boolean {
  const current = jobs.get(event.id);
  if (current && isStale(event, current)) {
    return false;
  }
  const next = mergeJobEvent(current, event);
  if (current && sameJob(current, next)) {
    return false;
  }
  jobs.set(next.id, next);
  return true;
}

/**
 * Apply a cluster status event to a map of clusters by id.
 *
 * @returns whether the map changed
 */
export function applyClusterEvent(
  clusters: Map<string, ICluster>,
  event: IClusterStatusEvent
): boolean {
  if (event.status === 'removed') {
    // A cluster a provider no longer offers (its jobs stay listed).
    return clusters.delete(event.cluster);
  }
  const current = clusters.get(event.cluster);
  const message = event.message ?? null;
  if (
    current &&
    current.status === event.status &&
    (current.status_message ?? null) === message
  ) {
    return false;
  }
  clusters.set(event.cluster, {
    ...(current ?? {
      id: event.cluster,
      name: event.cluster,
      kind: '',
      description: ''
    }),
    status: event.status,
    status_message: message
  });
  return true;
}

/**
 * Merge a freshly loaded list of jobs into what is held.
 *
 * The loaded list replaces the held jobs, except that a held job newer than
 * its loaded copy wins (an event overtook the request), and jobs named in
 * `keep` stay even when the list does not have them (an event inserted them
 * while the request was in flight).
 */
export function mergeJobSnapshot(
  held: Map<string, IJob>,
  loaded: readonly IJob[],
  keep: ReadonlySet<string> = new Set()
): Map<string, IJob> {
  const next = new Map<string, IJob>();
  for (const job of loaded) {
    const current = held.get(job.id);
    next.set(job.id, current && isStale(job, current) ? current : job);
  }
  for (const id of keep) {
    const current = held.get(id);
    if (current && !next.has(id)) {
      next.set(id, current);
    }
  }
  return next;
}

/**
 * Jobs in display order: live jobs first, then finished ones; newest first
 * within each group; ties broken by id so the order is stable.
 */
export function sortJobs(jobs: Iterable<IJob>): IJob[] {
  // Parse each time once: sorting thousands of jobs stays cheap.
  const keyed = Array.from(jobs, job => ({ job, time: sortTime(job) }));
  keyed.sort(
    (a, b) =>
      Number(a.job.terminal) - Number(b.job.terminal) ||
      b.time - a.time ||
      (a.job.id < b.job.id ? -1 : a.job.id > b.job.id ? 1 : 0)
  );
  return keyed.map(entry => entry.job);
}

/**
 * The comparison behind `sortJobs`.
 */
export function compareJobs(a: IJob, b: IJob): number {
  if (a.terminal !== b.terminal) {
    return a.terminal ? 1 : -1;
  }
  const byTime = sortTime(b) - sortTime(a);
  if (byTime !== 0) {
    return byTime;
  }
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Clusters in display order: by name, then id.
 */
export function sortClusters(clusters: Iterable<ICluster>): ICluster[] {
  return Array.from(clusters).sort(
    (a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id)
  );
}

/**
 * The CSS class of a state badge: `jp-pwlab-state-<state lowercased>`.
 * Anything that is not a known state gets `jp-pwlab-state-unknown`.
 */
export function stateBadgeClass(state: string): string {
  const upper = typeof state === 'string' ? state.toUpperCase() : '';
  const known = isJobState(upper) ? upper : 'UNKNOWN';
  return `jp-pwlab-state-${known.toLowerCase()}`;
}

/**
 * The CSS class of a cluster status: `jp-pwlab-cluster-<status>`.
 */
export function clusterStatusClass(status: string): string {
  const known = CLUSTER_STATUSES.includes(status as ClusterStatus)
    ? status
    : 'error';
  return `jp-pwlab-cluster-${known}`;
}

/**
 * A state for people: `OUT_OF_MEMORY` → `out of memory`.
 */
export function stateLabel(state: string): string {
  return String(state).toLowerCase().replace(/_/g, ' ');
}

/**
 * A duration as a short label: `42s`, `3m 05s`, `2h 03m`, `1d 04h`.
 */
export function formatDuration(milliseconds: number): string {
  const total = Math.max(0, Math.floor(milliseconds / 1000));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (days > 0) {
    return `${days}d ${pad(hours)}h`;
  }
  if (hours > 0) {
    return `${hours}h ${pad(minutes)}m`;
  }
  if (minutes > 0) {
    return `${minutes}m ${pad(seconds)}s`;
  }
  return `${seconds}s`;
}

/**
 * How long a job has run: from `started_at` to `ended_at`, or to `now` while
 * it is live. An empty string when the job never started.
 *
 * @param now - the current time in milliseconds since the epoch
 */
export function formatElapsed(job: IJob, now: number): string {
  const started = parseTime(job.started_at);
  if (started === null) {
    return '';
  }
  let end = parseTime(job.ended_at);
  if (end === null) {
    end = job.terminal ? (parseTime(job.updated_at) ?? started) : now;
  }
  return formatDuration(end - started);
}

/**
 * How much walltime a running job has left: its limit minus the time since it
 * started. An empty string when the job is not running or has no limit.
 *
 * @param now - the current time in milliseconds since the epoch
 */
export function formatTimeLeft(job: IJob, now: number): string {
  const started = parseTime(job.started_at);
  const limit = job.resources?.time_limit_minutes;
  if (job.terminal || started === null || typeof limit !== 'number') {
    return '';
  }
  return formatCoarse(started + limit * 60_000 - now);
}

/**
 * A duration to the minute once it is a minute or more: `42s`, `58m`,
 * `2h 03m`, `1d 04h`.
 */
export function formatCoarse(milliseconds: number): string {
  const total = Math.max(0, Math.floor(milliseconds / 1000));
  if (total >= 3600 || total < 60) {
    return formatDuration(milliseconds);
  }
  return `${Math.floor(total / 60)}m`;
}

/**
 * Whether two jobs hold the same values in the fields events carry.
 */
function sameJob(a: IJob, b: IJob): boolean {
  return JOB_EVENT_FIELDS.every(field => {
    const x = a[field];
    const y = b[field];
    if (x === y) {
      return true;
    }
    // Guidance fields are objects, new in every event.
    return (
      typeof x === 'object' &&
      typeof y === 'object' &&
      x !== null &&
      y !== null &&
      JSON.stringify(x) === JSON.stringify(y)
    );
  });
}

/**
 * The time a job is ordered by: submitted, else updated, else 0.
 */
function sortTime(job: IJob): number {
  return parseTime(job.submitted_at) ?? parseTime(job.updated_at) ?? 0;
}
