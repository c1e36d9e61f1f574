import { ServerConnection } from '@jupyterlab/services';

import { APIError, createJobsAPI, requestAPI } from '../api';

type Handler = (request: Request) => Response | Promise<Response>;

function settingsFor(handler: Handler): {
  settings: ServerConnection.ISettings;
  requests: Request[];
} {
  const requests: Request[] = [];
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/lab-base/',
    fetch: async (input: RequestInfo | URL) => {
      const request = input as Request;
      requests.push(request);
      return handler(request);
    }
  });
  return { settings, requests };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });
}

async function rejection(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof APIError) {
      return error;
    }
    throw new Error(`expected an APIError, got ${error}`);
  }
  throw new Error('expected the request to fail');
}

describe('requestAPI', () => {
  it('calls below the extension namespace and decodes JSON', async () => {
    const { settings, requests } = settingsFor(() => json({ clusters: [] }));
    const body = await requestAPI<{ clusters: unknown[] }>(
      'clusters',
      {},
      settings
    );
    expect(body).toEqual({ clusters: [] });
    // makeRequest may append a cache-busting query parameter.
    const url = new URL(requests[0].url);
    expect(url.origin + url.pathname).toBe(
      'http://localhost:8888/lab-base/parallelworks-lab/clusters'
    );
    expect(requests[0].method).toBe('GET');
  });

  it('returns undefined for an empty body', async () => {
    const { settings } = settingsFor(() => new Response(null, { status: 204 }));
    await expect(
      requestAPI('jobs/x', { method: 'DELETE' }, settings)
    ).resolves.toBeUndefined();
  });

  it('throws an APIError with the field errors of the body', async () => {
    const { settings } = settingsFor(() =>
      json(
        {
          message: 'Invalid job',
          errors: [
            { field: 'resources.gpus', message: 'at most 4' },
            { message: 'no field' }
          ]
        },
        400
      )
    );
    const error = await rejection(
      requestAPI('jobs', { method: 'POST', body: '{}' }, settings)
    );
    expect(error.status).toBe(400);
    expect(error.message).toBe('Invalid job');
    expect(error.errors).toEqual([
      { field: 'resources.gpus', message: 'at most 4' },
      { field: '', message: 'no field' }
    ]);
  });

  it('uses the text of a non-JSON error body', async () => {
    const { settings } = settingsFor(
      () => new Response('Bad Gateway from proxy', { status: 502 })
    );
    const error = await rejection(requestAPI('jobs', {}, settings));
    expect(error.status).toBe(502);
    expect(error.message).toBe('Bad Gateway from proxy');
    expect(error.errors).toEqual([]);
  });

  it('falls back to the status when the error body is empty', async () => {
    const { settings } = settingsFor(
      () => new Response('', { status: 404, statusText: 'Not Found' })
    );
    const error = await rejection(requestAPI('jobs/nope', {}, settings));
    expect(error.message).toBe('404 Not Found');
  });

  it('wraps a network failure', async () => {
    const { settings } = settingsFor(() => {
      throw new TypeError('Failed to fetch');
    });
    await expect(requestAPI('clusters', {}, settings)).rejects.toBeInstanceOf(
      ServerConnection.NetworkError
    );
  });
});

describe('createJobsAPI', () => {
  it('lists clusters and jobs with a query string', async () => {
    const { settings, requests } = settingsFor(request =>
      request.url.includes('/clusters')
        ? json({ clusters: [{ id: 'a' }] })
        : json({ jobs: [], next_cursor: null })
    );
    const api = createJobsAPI(settings);
    expect(await api.listClusters()).toEqual([{ id: 'a' }]);
    expect(
      await api.listJobs({
        limit: 200,
        cluster: 'a b',
        state: ['QUEUED', 'RUNNING'],
        cursor: undefined
      })
    ).toEqual({ jobs: [], next_cursor: null });
    const url = new URL(requests[1].url);
    expect(url.pathname).toBe('/lab-base/parallelworks-lab/jobs');
    expect(url.searchParams.get('limit')).toBe('200');
    expect(url.searchParams.get('cluster')).toBe('a b');
    expect(url.searchParams.get('state')).toBe('QUEUED,RUNNING');
    expect(url.searchParams.has('cursor')).toBe(false);
  });
});

describe('job calls', () => {
  it('submits, acts on jobs and reads logs at an offset', async () => {
    const { settings, requests } = settingsFor(() => json({ id: 'x' }, 201));
    const api = createJobsAPI(settings);
    await api.submit({ cluster: 'local', command: 'hostname' });
    await api.cancel('a/b');
    await api.hold('j1');
    await api.release('j1');
    await api.getJob('j1');
    await api.getCluster('hpc 1');
    await api.readLog('j1', 'stderr', 42);
    const calls = requests.map(r => {
      const url = new URL(r.url);
      return `${r.method} ${url.pathname.replace('/lab-base/parallelworks-lab/', '')}${
        url.searchParams.has('stream')
          ? `?stream=${url.searchParams.get('stream')}&offset=${url.searchParams.get('offset')}`
          : ''
      }`;
    });
    expect(calls).toEqual([
      'POST jobs',
      'DELETE jobs/a%2Fb',
      'POST jobs/j1/hold',
      'POST jobs/j1/release',
      'GET jobs/j1',
      'GET clusters/hpc%201',
      'GET jobs/j1/logs?stream=stderr&offset=42'
    ]);
    expect(await requests[0].json()).toEqual({
      cluster: 'local',
      command: 'hostname'
    });
  });
});

describe('stored submissions', () => {
  it('reads what was submitted for a job', async () => {
    const spec = { cluster: 'local', script: '#!/bin/bash\necho hi\n' };
    const { settings, requests } = settingsFor(() => json(spec));
    const api = createJobsAPI(settings);
    expect(await api.getSubmission('abc 1')).toEqual(spec);
    expect(new URL(requests[0].url).pathname).toBe(
      '/lab-base/parallelworks-lab/jobs/abc%201/submission'
    );
  });
});

describe('guidance calls', () => {
  it('asks for suggestions and manages templates', async () => {
    const suggestion = {
      runs: 5,
      matched_by: 'script',
      resources: { memory_mb: 3800, time_limit_minutes: 15 },
      max_memory_mb: 3100.0,
      max_elapsed_seconds: 540,
      message:
        'Last 5 runs used at most 3.1 GiB and 9 min; you asked for 32 GiB and 2 h.',
      job_ids: ['a', 'b', 'c', 'd', 'e']
    };
    const template = {
      name: 'nightly run',
      description: '',
      cluster: 'hpc',
      resources: { memory_mb: 4096 },
      script: '#!/bin/bash\n',
      command: null,
      source: 'user',
      read_only: false
    };
    const { settings, requests } = settingsFor(request => {
      const path = new URL(request.url).pathname;
      if (path.endsWith('/suggestions')) {
        return json(suggestion);
      }
      if (request.method === 'DELETE') {
        return new Response(null, { status: 204 });
      }
      if (request.method === 'POST') {
        return json(template, 201);
      }
      return json({ templates: [template] });
    });
    const api = createJobsAPI(settings);
    const body = {
      cluster: 'hpc',
      script: '#!/bin/bash\n',
      resources: { memory_mb: 32768 }
    };
    expect(await api.suggest(body)).toEqual(suggestion);
    expect(await api.listTemplates()).toEqual([template]);
    expect(
      await api.saveTemplate({
        name: 'nightly run',
        description: '',
        cluster: 'hpc',
        resources: { memory_mb: 4096 },
        script: '#!/bin/bash\n'
      })
    ).toEqual(template);
    await expect(api.deleteTemplate('nightly run')).resolves.toBeUndefined();
    expect(
      requests.map(
        r =>
          `${r.method} ${new URL(r.url).pathname.replace('/lab-base/parallelworks-lab/', '')}`
      )
    ).toEqual([
      'POST suggestions',
      'GET templates',
      'POST templates',
      'DELETE templates/nightly%20run'
    ]);
    expect(await requests[0].json()).toEqual(body);
  });

  it('gives the 409 of a site template as an APIError', async () => {
    const { settings } = settingsFor(() =>
      json({ message: "'gpu-small' is a site template", errors: [] }, 409)
    );
    const error = await rejection(
      createJobsAPI(settings).deleteTemplate('gpu-small')
    );
    expect(error.status).toBe(409);
    expect(error.message).toBe("'gpu-small' is a site template");
  });
});
