/**
 * Types of the parallelworks-lab REST API and push events.
 *
 * Field names follow the server's JSON (snake_case) so that responses can be
 * used as they arrive, without a mapping layer.
 */

/**
 * Normalized job states, as reported by the server.
 */
export type JobState =
  | 'SUBMITTING'
  | 'QUEUED'
  | 'HELD'
  | 'RUNNING'
  | 'SUSPENDED'
  | 'COMPLETING'
  | 'COMPLETED'
  | 'FAILED'
  | 'CANCELLED'
  | 'TIMEOUT'
  | 'OUT_OF_MEMORY'
  | 'NODE_FAIL'
  | 'PREEMPTED'
  | 'UNKNOWN';

/**
 * Every normalized state, in lifecycle order.
 */
export const JOB_STATES: readonly JobState[] = [
  'SUBMITTING',
  'QUEUED',
  'HELD',
  'RUNNING',
  'SUSPENDED',
  'COMPLETING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'PREEMPTED',
  'UNKNOWN'
];

/**
 * The states in which a job may still change.
 */
export const LIVE_STATES: readonly JobState[] = [
  'SUBMITTING',
  'QUEUED',
  'HELD',
  'RUNNING',
  'SUSPENDED',
  'COMPLETING',
  'UNKNOWN'
];

/**
 * The states after which a job never changes again.
 */
export const TERMINAL_STATES: readonly JobState[] = [
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'PREEMPTED'
];

/**
 * Reachability of a cluster, as seen by the server.
 */
export type ClusterStatus =
  | 'ok'
  | 'unreachable'
  | 'auth_rejected'
  | 'error'
  | 'off'
  | 'starting'
  | 'stopping'
  | 'degraded'
  | 'removed';

/**
 * A cluster in `GET clusters`.
 */
export interface ICluster {
  id: string;
  name: string;
  kind: string;
  status: ClusterStatus;
  description: string;
  /**
   * Why the cluster is not `ok`, when known.
   */
  status_message?: string | null;
  /**
   * The interpreter that runs Python files on this cluster.
   */
  python?: string;
}

/**
 * A partition (queue) of a cluster.
 */
export interface IPartition {
  name: string;
  default: boolean;
  max_time_minutes: number | null;
  max_nodes: number | null;
  nodes_total: number;
  nodes_idle: number;
  cpus_per_node: number;
  cpus_idle: number | null;
  memory_mb_per_node: number;
  gpus_per_node: number;
  gpu_types: string[];
  state: string;
  /**
   * Accounts allowed on this partition; empty: any.
   */
  accounts?: string[];
  deny_accounts?: string[];
  /**
   * QOS allowed on this partition; empty: any.
   */
  qos?: string[];
  deny_qos?: string[];
}

/**
 * `GET clusters/{id}`.
 */
export interface IClusterDetail extends ICluster {
  partitions: IPartition[];
  /**
   * JSON Schema of a resource request on this cluster.
   */
  options_schema: Record<string, unknown>;
}

/**
 * Resources requested for a job.
 */
export interface IResourceRequest {
  partition?: string | null;
  nodes?: number | null;
  ntasks?: number | null;
  cpus_per_task?: number | null;
  gpus?: number | null;
  memory_mb?: number | null;
  time_limit_minutes?: number | null;
  array?: string | null;
  account?: string | null;
  qos?: string | null;
  [key: string]: unknown;
}

/**
 * A job, as returned by the REST API.
 */
export interface IJob {
  id: string;
  cluster: string;
  native_id: string | null;
  name: string;
  state: JobState;
  raw_state: string | null;
  reason: string | null;
  exit_code: number | null;
  terminal: boolean;
  submitted_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  updated_at: string | null;
  resources: IResourceRequest;
  stdout_path: string | null;
  stderr_path: string | null;
  working_dir: string | null;
  /**
   * For an array task: the id of its array job.
   */
  parent_id?: string | null;
  /**
   * For an array task: its index.
   */
  array_task?: string | null;
}

/**
 * `POST jobs` body: exactly one of `script` and `command`.
 */
export interface IJobSubmission {
  cluster: string;
  script?: string;
  command?: string;
  name?: string;
  resources?: IResourceRequest;
  working_dir?: string;
  env?: Record<string, string>;
  after?: string[];
}

/**
 * `GET clusters`.
 */
export interface IClustersResponse {
  clusters: ICluster[];
}

/**
 * Query parameters of `GET jobs`.
 */
export interface IJobQuery {
  cluster?: string;
  /**
   * One state or several (sent comma-separated).
   */
  state?: JobState | JobState[];
  limit?: number;
  cursor?: string;
}

/**
 * `GET jobs`.
 */
export interface IJobsResponse {
  jobs: IJob[];
  next_cursor: string | null;
}

/**
 * The output streams of a job.
 */
export type LogStream = 'stdout' | 'stderr';

/**
 * `GET jobs/{id}/logs`.
 */
export interface ILogChunk {
  data: string;
  offset: number;
  eof: boolean;
}

/**
 * One invalid field of a request.
 */
export interface IFieldError {
  field: string;
  message: string;
}

/**
 * The body of an error response.
 */
export interface IErrorBody {
  message: string;
  errors?: IFieldError[];
}

/**
 * Schema id of the job state push event.
 */
export const JOB_STATE_SCHEMA = 'urn:parallelworks-lab:job-state';

/**
 * Schema id of the cluster status push event.
 */
export const CLUSTER_STATUS_SCHEMA = 'urn:parallelworks-lab:cluster-status';

/**
 * The job fields a `job-state` event carries.
 */
export const JOB_EVENT_FIELDS = [
  'id',
  'cluster',
  'native_id',
  'name',
  'state',
  'raw_state',
  'reason',
  'exit_code',
  'terminal',
  'submitted_at',
  'started_at',
  'ended_at',
  'updated_at',
  'parent_id',
  'array_task'
] as const;

/**
 * Any event of the Jupyter Server event bus, as the browser receives it.
 */
export interface IEventEmission {
  readonly schema_id: string;
  readonly [key: string]: unknown;
}

/**
 * A `urn:parallelworks-lab:job-state` event.
 */
export type IJobStateEvent = Pick<IJob, 'id'> &
  Partial<Pick<IJob, (typeof JOB_EVENT_FIELDS)[number]>> & {
    schema_id: typeof JOB_STATE_SCHEMA;
  };

/**
 * A `urn:parallelworks-lab:cluster-status` event.
 */
export interface IClusterStatusEvent {
  schema_id: typeof CLUSTER_STATUS_SCHEMA;
  cluster: string;
  status: ClusterStatus;
  message?: string | null;
}
