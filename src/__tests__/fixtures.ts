import { APIError, type IJobsAPI } from '../api';
import type {
  ICluster,
  IClusterDetail,
  IJob,
  IJobQuery,
  IJobSubmission,
  IJobsResponse,
  ILogChunk,
  IPartition,
  ISuggestion,
  ISuggestionRequest,
  ITemplate,
  ITemplateInput,
  LogStream
} from '../types';

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
 * A partition with plausible defaults, overridden by `fields`.
 */
export function makePartition(
  fields: Partial<IPartition> & { name: string }
): IPartition {
  return {
    default: false,
    max_time_minutes: 60,
    max_nodes: 4,
    nodes_total: 4,
    nodes_idle: 2,
    cpus_per_node: 8,
    cpus_idle: 16,
    memory_mb_per_node: 16384,
    gpus_per_node: 0,
    gpu_types: [],
    state: 'up',
    ...fields
  };
}

/**
 * An options schema as the server writes it (see `limits.options_schema`):
 * the partition enum, per-partition limits as `allOf` if/then branches, and
 * the raw partitions in `x-partitions`.
 */
export function makeSchema(
  partitions: IPartition[],
  options: { array?: boolean } = {}
): Record<string, unknown> {
  const byDefault = partitions.find(p => p.default) ?? partitions[0];
  const properties: Record<string, unknown> = {
    partition: {
      title: 'Partition',
      type: 'string',
      enum: partitions.map(p => p.name),
      default: byDefault?.name ?? null,
      description: 'Partition (queue)'
    },
    nodes: {
      default: 1,
      maximum: 100000,
      minimum: 1,
      title: 'Nodes',
      type: 'integer'
    },
    ntasks: {
      default: 1,
      maximum: 1000000,
      minimum: 1,
      title: 'Ntasks',
      type: 'integer'
    },
    cpus_per_task: {
      default: 1,
      maximum: 4096,
      minimum: 1,
      title: 'Cpus Per Task',
      type: 'integer'
    },
    gpus: {
      default: 0,
      maximum: 1024,
      minimum: 0,
      title: 'Gpus',
      type: 'integer'
    },
    memory_mb: {
      anyOf: [
        { maximum: 1099511627776, minimum: 1, type: 'integer' },
        { type: 'null' }
      ],
      default: null,
      title: 'Memory Mb'
    },
    time_limit_minutes: {
      anyOf: [
        { maximum: 525600, minimum: 1, type: 'integer' },
        { type: 'null' }
      ],
      default: null,
      title: 'Time Limit Minutes'
    }
  };
  if (options.array) {
    properties.array = {
      anyOf: [
        {
          maxLength: 256,
          pattern: '^\\d+(-\\d+(:\\d+)?)?(,\\d+(-\\d+(:\\d+)?)?)*(%\\d+)?$',
          type: 'string'
        },
        { type: 'null' }
      ],
      default: null,
      title: 'Array'
    };
  }
  for (const [name, title] of [
    ['account', 'Account'],
    ['qos', 'Qos']
  ]) {
    properties[name] = {
      anyOf: [
        {
          maxLength: 64,
          pattern: '^[A-Za-z0-9_.][A-Za-z0-9_.-]*$',
          type: 'string'
        },
        { type: 'null' }
      ],
      default: null,
      title
    };
  }
  return {
    title: 'ResourceRequest',
    type: 'object',
    properties,
    additionalProperties: false,
    allOf: partitions.map(p => {
      const maxNodes = p.max_nodes || p.nodes_total || 1;
      const then: Record<string, unknown> = {
        nodes: { maximum: maxNodes },
        cpus_per_task: { maximum: p.cpus_per_node },
        ntasks: { maximum: p.cpus_per_node * maxNodes },
        gpus: { maximum: p.gpus_per_node * maxNodes },
        memory_mb: { maximum: p.memory_mb_per_node }
      };
      if (p.max_time_minutes !== null) {
        then.time_limit_minutes = { maximum: p.max_time_minutes };
      }
      if (p.accounts?.length) {
        then.account = { enum: [...p.accounts, null] };
      }
      if (p.qos?.length) {
        then.qos = { enum: [...p.qos, null] };
      }
      return {
        if: {
          properties: { partition: { const: p.name } },
          ...(p === byDefault ? {} : { required: ['partition'] })
        },
        then: { properties: then }
      };
    }),
    'x-partitions': partitions
  };
}

/**
 * An in-memory stand-in for the REST API.
 */
export class FakeAPI implements IJobsAPI {
  clusters: ICluster[] = [];
  details = new Map<string, IClusterDetail>();
  jobs: IJob[] = [];
  logs = new Map<string, { text: string; done: boolean }>();
  failWith: Error | null = null;
  calls = { clusters: 0, jobs: 0, job: 0, logs: 0, details: 0 };
  queries: IJobQuery[] = [];
  submitted: IJobSubmission[] = [];
  actions: string[] = [];
  /**
   * What `submit` answers, or throws.
   */
  onSubmit: (body: IJobSubmission) => IJob = body =>
    makeJob({
      id: 'new00000001',
      cluster: body.cluster,
      name: body.name ?? 'job'
    });
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

  /**
   * Pages of the jobs matching the query, newest first like the server
   * (the order of `jobs`), with numeric cursors.
   */
  async listJobs(query: IJobQuery = {}): Promise<IJobsResponse> {
    this.calls.jobs++;
    this.queries.push(query);
    const states =
      query.state === undefined
        ? null
        : Array.isArray(query.state)
          ? query.state
          : [query.state];
    const matching = this.jobs
      .filter(j => !states || states.includes(j.state))
      .filter(j => !query.cluster || j.cluster === query.cluster)
      .map(j => ({ ...j }));
    if (this.gate) {
      await this.gate;
    }
    if (this.failWith) {
      throw this.failWith;
    }
    const start = query.cursor ? Number(query.cursor) : 0;
    const limit = query.limit ?? 100;
    const page = matching.slice(start, start + limit);
    const next = start + limit < matching.length ? String(start + limit) : null;
    return { jobs: page, next_cursor: next };
  }

  async getCluster(id: string): Promise<IClusterDetail> {
    this.calls.details++;
    if (this.failWith) {
      throw this.failWith;
    }
    const detail = this.details.get(id);
    if (!detail) {
      throw new APIError(`unknown cluster '${id}'`, 404);
    }
    return detail;
  }

  async getJob(id: string): Promise<IJob> {
    this.calls.job++;
    const job = this.jobs.find(j => j.id === id);
    if (!job) {
      throw new APIError(`unknown job '${id}'`, 404);
    }
    return { ...job };
  }

  async submit(body: IJobSubmission): Promise<IJob> {
    this.submitted.push(body);
    return this.onSubmit(body);
  }

  /**
   * Stored submissions by job id (what `GET jobs/{id}/submission` answers).
   */
  submissions = new Map<string, IJobSubmission>();

  started: string[] = [];

  async startCluster(id: string): Promise<ICluster> {
    this.started.push(id);
    return { ...makeCluster({ id }), status: 'starting' };
  }

  async getSubmission(id: string): Promise<IJobSubmission> {
    const spec = this.submissions.get(id);
    if (!spec) {
      throw new APIError(`unknown job '${id}'`, 404);
    }
    return spec;
  }

  async cancel(id: string): Promise<IJob> {
    return this._act(id, 'cancel', 'CANCELLED');
  }

  async hold(id: string): Promise<IJob> {
    return this._act(id, 'hold', 'HELD');
  }

  async release(id: string): Promise<IJob> {
    return this._act(id, 'release', 'QUEUED');
  }

  /**
   * Serve `logs` by character offsets, at most `chunk` characters a call.
   */
  chunk = 1 << 20;

  async readLog(
    id: string,
    stream: LogStream,
    offset: number
  ): Promise<ILogChunk> {
    this.calls.logs++;
    const log = this.logs.get(`${id}:${stream}`) ?? { text: '', done: false };
    const data = log.text.slice(offset, offset + this.chunk);
    const end = offset + data.length;
    return { data, offset: end, eof: log.done && end >= log.text.length };
  }

  /**
   * `POST suggestions` bodies, in order.
   */
  suggestionRequests: ISuggestionRequest[] = [];
  /**
   * What `suggest` answers, or throws (default: no history).
   */
  onSuggest: (body: ISuggestionRequest) => ISuggestion = () => ({
    runs: 0,
    matched_by: null,
    resources: {},
    max_memory_mb: null,
    max_elapsed_seconds: null,
    message: null,
    job_ids: []
  });

  async suggest(body: ISuggestionRequest): Promise<ISuggestion> {
    this.suggestionRequests.push(body);
    return this.onSuggest(body);
  }

  templates: ITemplate[] = [];
  /**
   * `POST templates` bodies, in order.
   */
  savedTemplates: ITemplateInput[] = [];
  /**
   * `DELETE templates/{name}` names, in order.
   */
  deletedTemplates: string[] = [];

  async listTemplates(): Promise<ITemplate[]> {
    return this.templates.map(t => ({ ...t }));
  }

  /**
   * Like the server: 409 for a site template's name, 400 for a bad name.
   */
  async saveTemplate(input: ITemplateInput): Promise<ITemplate> {
    this.savedTemplates.push(input);
    const existing = this.templates.find(t => t.name === input.name);
    if (existing?.read_only) {
      throw new APIError(
        `'${input.name}' is a site template and cannot be replaced`,
        409
      );
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9 _.-]*$/.test(input.name)) {
      throw new APIError('Invalid template', 400, [
        {
          field: 'name',
          message: 'Use letters, digits, spaces, _ . and -'
        }
      ]);
    }
    const template: ITemplate = {
      name: input.name,
      description: input.description,
      cluster: input.cluster,
      resources: input.resources,
      script: input.script ?? null,
      command: input.command ?? null,
      source: 'user',
      read_only: false
    };
    this.templates = [
      ...this.templates.filter(t => t.name !== input.name),
      template
    ];
    return template;
  }

  async deleteTemplate(name: string): Promise<void> {
    this.deletedTemplates.push(name);
    const existing = this.templates.find(t => t.name === name);
    if (!existing) {
      throw new APIError(`unknown template '${name}'`, 404);
    }
    if (existing.read_only) {
      throw new APIError(`'${name}' is a site template`, 409);
    }
    this.templates = this.templates.filter(t => t.name !== name);
  }

  private async _act(
    id: string,
    action: string,
    state: IJob['state']
  ): Promise<IJob> {
    this.actions.push(`${action}:${id}`);
    const job = await this.getJob(id);
    return {
      ...job,
      state,
      terminal: state === 'CANCELLED',
      updated_at: '2030-01-01T00:00:00Z'
    };
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

/**
 * Wait until `condition` holds (checked every 5 ms), failing after `timeout` ms.
 * Use this, not a fixed sleep, before asserting that something happened: a
 * loaded CI machine can be much slower than a laptop.
 */
export async function until(
  condition: () => boolean,
  timeout = 3000
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeout} ms: ${condition}`);
    }
    await sleep(5);
  }
}
