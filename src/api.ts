import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  ICluster,
  IClusterDetail,
  IClustersResponse,
  IFieldError,
  IJob,
  IJobQuery,
  IJobSubmission,
  IJobsResponse,
  ILogChunk,
  ISuggestion,
  ISuggestionRequest,
  ITemplate,
  ITemplateInput,
  ITemplatesResponse,
  LogStream
} from './types';

/**
 * The URL namespace of the server extension.
 */
export const API_NAMESPACE = 'parallelworks-lab';

/**
 * A non-2xx answer of the server extension.
 */
export class APIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly errors: IFieldError[] = []
  ) {
    super(message);
    this.name = 'APIError';
  }
}

/**
 * Call the server extension's REST API.
 *
 * @param endPoint - path below `/parallelworks-lab`, with its query string
 * @param init - the fetch options
 * @param settings - the server connection settings
 * @returns the decoded JSON body (`undefined` for an empty body)
 * @throws {APIError} on a non-2xx status
 * @throws {ServerConnection.NetworkError} when the server cannot be reached
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  const text = await response.text();
  let body: unknown = undefined;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      if (response.ok) {
        throw new APIError(
          `Invalid JSON from ${endPoint || '/'}`,
          response.status
        );
      }
      body = undefined;
    }
  }

  if (!response.ok) {
    throw Private.toError(response, body, text);
  }
  return body as T;
}

/**
 * The REST calls of the extension, so that tests can replace the server.
 */
export interface IJobsAPI {
  listClusters(): Promise<ICluster[]>;
  listJobs(query?: IJobQuery): Promise<IJobsResponse>;
  getCluster(id: string): Promise<IClusterDetail>;
  getJob(id: string): Promise<IJob>;
  submit(body: IJobSubmission): Promise<IJob>;
  cancel(id: string): Promise<IJob>;
  hold(id: string): Promise<IJob>;
  release(id: string): Promise<IJob>;
  readLog(id: string, stream: LogStream, offset: number): Promise<ILogChunk>;
  /**
   * What was submitted for a job (script or command, resources, env, after).
   */
  getSubmission(id: string): Promise<IJobSubmission>;
  /**
   * Start a cluster that is switched off (platform clusters); answers at once.
   */
  startCluster(id: string): Promise<ICluster>;
  /**
   * What earlier runs of the same script or name used, and what to ask for.
   */
  suggest(body: ISuggestionRequest): Promise<ISuggestion>;
  /**
   * Site templates (read-only) and the user's own.
   */
  listTemplates(): Promise<ITemplate[]>;
  /**
   * Save (or replace) a user template.
   */
  saveTemplate(template: ITemplateInput): Promise<ITemplate>;
  /**
   * Delete a user template.
   */
  deleteTemplate(name: string): Promise<void>;
}

/**
 * The jobs API backed by the Jupyter server.
 */
export function createJobsAPI(settings?: ServerConnection.ISettings): IJobsAPI {
  const job = (id: string, action = '') =>
    `jobs/${encodeURIComponent(id)}${action ? '/' + action : ''}`;
  const post = { method: 'POST' };
  return {
    async listClusters() {
      const body = await requestAPI<IClustersResponse>(
        'clusters',
        {},
        settings
      );
      return body.clusters;
    },
    listJobs(query: IJobQuery = {}) {
      return requestAPI<IJobsResponse>(
        'jobs' + URLExt.objectToQueryString(Private.compact(query)),
        {},
        settings
      );
    },
    getCluster(id: string) {
      return requestAPI<IClusterDetail>(
        `clusters/${encodeURIComponent(id)}`,
        {},
        settings
      );
    },
    getJob(id: string) {
      return requestAPI<IJob>(job(id), {}, settings);
    },
    submit(body: IJobSubmission) {
      return requestAPI<IJob>(
        'jobs',
        { method: 'POST', body: JSON.stringify(body) },
        settings
      );
    },
    cancel(id: string) {
      return requestAPI<IJob>(job(id), { method: 'DELETE' }, settings);
    },
    hold(id: string) {
      return requestAPI<IJob>(job(id, 'hold'), post, settings);
    },
    release(id: string) {
      return requestAPI<IJob>(job(id, 'release'), post, settings);
    },
    readLog(id: string, stream: LogStream, offset: number) {
      return requestAPI<ILogChunk>(
        job(id, 'logs') +
          URLExt.objectToQueryString({ stream, offset: String(offset) }),
        {},
        settings
      );
    },
    getSubmission(id: string) {
      return requestAPI<IJobSubmission>(job(id, 'submission'), {}, settings);
    },
    startCluster(id: string) {
      return requestAPI<ICluster>(
        `clusters/${encodeURIComponent(id)}/start`,
        post,
        settings
      );
    },
    suggest(body: ISuggestionRequest) {
      return requestAPI<ISuggestion>(
        'suggestions',
        { method: 'POST', body: JSON.stringify(body) },
        settings
      );
    },
    async listTemplates() {
      const body = await requestAPI<ITemplatesResponse>(
        'templates',
        {},
        settings
      );
      return body.templates;
    },
    saveTemplate(template: ITemplateInput) {
      return requestAPI<ITemplate>(
        'templates',
        { method: 'POST', body: JSON.stringify(template) },
        settings
      );
    },
    async deleteTemplate(name: string) {
      await requestAPI<void>(
        `templates/${encodeURIComponent(name)}`,
        { method: 'DELETE' },
        settings
      );
    }
  };
}

namespace Private {
  /**
   * Build an APIError from an error response.
   */
  export function toError(
    response: Response,
    body: unknown,
    text: string
  ): APIError {
    let message = '';
    let errors: IFieldError[] = [];
    if (body !== null && typeof body === 'object') {
      const record = body as Record<string, unknown>;
      if (typeof record.message === 'string') {
        message = record.message;
      }
      if (Array.isArray(record.errors)) {
        errors = record.errors
          .filter(
            (e): e is Record<string, unknown> =>
              e !== null && typeof e === 'object'
          )
          .map(e => ({
            field: typeof e.field === 'string' ? e.field : '',
            message: typeof e.message === 'string' ? e.message : String(e)
          }));
      }
    }
    if (!message) {
      message =
        text.trim().slice(0, 200) ||
        `${response.status} ${response.statusText}`.trim();
    }
    return new APIError(message, response.status, errors);
  }

  /**
   * Drop undefined and empty values from a query.
   */
  export function compact(query: IJobQuery): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(query)) {
      const text = Array.isArray(value) ? value.join(',') : value;
      if (text !== undefined && text !== null && text !== '') {
        out[key] = String(text);
      }
    }
    return out;
  }
}
