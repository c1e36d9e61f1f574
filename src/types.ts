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
  | 'rate_limited'
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
  /**
   * Who can read the output files of jobs submitted here ("only you", ...).
   */
  outputs_readable_by?: string;
  /**
   * The umask jobs are submitted with (octal, e.g. "077").
   */
  output_umask?: string;
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
  /**
   * Why a waiting job waits, in plain words (null: the scheduler says
   * nothing, or the server cannot explain it).
   */
  reason_explained?: IReasonExplained | null;
  /**
   * The scheduler's own estimate of when a queued job starts (ISO time).
   */
  estimated_start?: string | null;
  /**
   * How busy the job's partition is (`GET jobs/{id}` only, queued jobs).
   */
  partition_load?: IPartitionLoad | null;
  /**
   * What a finished job used, once measured.
   */
  usage?: IJobUsage | null;
  /**
   * Where the job came from.
   */
  provenance?: IProvenance | null;
}

/**
 * A scheduler's reason code explained for a researcher.
 */
export interface IReasonExplained {
  /**
   * The scheduler's raw code (`Resources`, `Dependency`, …).
   */
  code: string;
  /**
   * One plain sentence; for an unknown code it names the raw code.
   */
  summary: string;
  /**
   * What the user can do about it, when anything.
   */
  advice: string | null;
  /**
   * Whether the server knows this code.
   */
  known: boolean;
  /**
   * What the scheduler itself says, in plain words where recognised (Grid
   * Engine's scheduling info; job detail only).
   */
  details?: string[];
}

/**
 * How busy a partition is, from the data the server already has.
 */
export interface IPartitionLoad {
  partition: string;
  nodes_idle: number | null;
  nodes_total: number | null;
  cpus_idle: number | null;
  /**
   * The load in words: `3 of 8 nodes idle in gpu`.
   */
  text: string;
}

/**
 * Where a job's usage figures come from.
 */
export type UsageSource = 'sacct' | 'qacct' | 'measured';

/**
 * What a finished job used, against what it asked for.
 */
export interface IJobUsage {
  source: UsageSource | string;
  elapsed_seconds: number | null;
  time_limit_seconds: number | null;
  cpus: number | null;
  cpu_seconds: number | null;
  /**
   * CPU time ÷ (elapsed × CPUs), 0..1.
   */
  cpu_efficiency: number | null;
  max_memory_mb: number | null;
  requested_memory_mb: number | null;
  /**
   * Peak memory ÷ requested memory, 0..1.
   */
  memory_efficiency: number | null;
  gpus: number | null;
  /**
   * Short advice sentences (a request much larger than the use, …).
   */
  hints: string[];
  /**
   * One line: `used 12% of its memory request (1.2 GiB of 10 GiB)`.
   */
  summary: string | null;
}

/**
 * Where a job was submitted from.
 */
export interface IProvenance {
  user: string | null;
  /**
   * Relative to the Jupyter root, as in the file browser.
   */
  notebook_path: string | null;
  cell_id: string | null;
  git_commit: string | null;
  /**
   * Whether the working tree had uncommitted changes.
   */
  git_dirty: boolean | null;
  /**
   * The environment modules loaded (`module list`).
   */
  modules: string[];
}

/**
 * Where a submission comes from, sent with `POST jobs` (the server adds the
 * user, the git commit and the modules itself).
 */
export interface IJobSource {
  notebook_path: string | null;
  cell_id: string | null;
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
  /**
   * The notebook (and cell) the job comes from.
   */
  source?: IJobSource;
  /**
   * `GET jobs/{id}/submission` only: secret-named env variables whose values
   * the server does not keep (blank in `env`); the user re-enters them.
   */
  redacted_env?: string[];
}

/**
 * `POST suggestions` body: what would be submitted.
 */
export type ISuggestionRequest = Pick<
  IJobSubmission,
  'cluster' | 'script' | 'command' | 'name' | 'resources'
>;

/**
 * `POST suggestions`: what earlier runs of the same script or name used.
 */
export interface ISuggestion {
  /**
   * How many earlier runs it is based on (0: no history).
   */
  runs: number;
  matched_by: 'script' | 'name' | null;
  /**
   * Only the fields it suggests (`memory_mb`, `time_limit_minutes`, …).
   */
  resources: Partial<IResourceRequest>;
  max_memory_mb: number | null;
  max_elapsed_seconds: number | null;
  /**
   * `Last 5 runs used at most 3.1 GiB and 9 min; you asked for 32 GiB and 2 h.`
   */
  message: string | null;
  job_ids: string[];
}

/**
 * A saved set of resources and a script or command.
 */
export interface ITemplate {
  name: string;
  description: string;
  cluster: string | null;
  resources: Partial<IResourceRequest>;
  script: string | null;
  command: string | null;
  /**
   * `site`: written by the administrators; `user`: saved by the user.
   */
  source: 'site' | 'user';
  read_only: boolean;
}

/**
 * `POST templates` body.
 */
export interface ITemplateInput {
  name: string;
  description: string;
  cluster: string | null;
  resources: Partial<IResourceRequest>;
  script?: string;
  command?: string;
}

/**
 * `GET templates`.
 */
export interface ITemplatesResponse {
  templates: ITemplate[];
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
  'array_task',
  'reason_explained',
  'estimated_start',
  'usage',
  'provenance'
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
