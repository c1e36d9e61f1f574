import {
  applyPrefill,
  buildSubmission,
  emptyForm,
  parseEnv,
  placeServerErrors,
  prefillFromFile,
  prefillFromJob,
  REENTER_PREFIX,
  relativeToRoot,
  shellQuote,
  suggestionRequest,
  templateDraft,
  templateFields,
  withResourceValues,
  holdsResourceValues
} from '../submission';
import { makeJob, makePartition, makeSchema } from './fixtures';

const schema = makeSchema([
  makePartition({
    name: 'local',
    default: true,
    cpus_per_node: 2,
    max_nodes: 1,
    max_time_minutes: 60
  })
]);

describe('buildSubmission', () => {
  const form = () =>
    applyPrefill(
      { script: '#!/bin/bash\necho hi\n', name: ' train ' },
      'local',
      schema
    );

  it('builds the POST body from the form', () => {
    const state = form();
    state.resources.time_limit_minutes = '1:30:00';
    state.resources.time_limit_minutes = '45';
    state.workingDir = '/experiments/run1';
    state.env = 'ALPHA=0.1\n# comment\n\nBETA=a=b';
    state.after = ['3f2a9c01b7de'];
    expect(buildSubmission(state, schema)).toEqual({
      errors: {},
      body: {
        cluster: 'local',
        script: '#!/bin/bash\necho hi\n',
        name: 'train',
        working_dir: 'experiments/run1',
        env: { ALPHA: '0.1', BETA: 'a=b' },
        after: ['3f2a9c01b7de'],
        resources: {
          partition: 'local',
          nodes: 1,
          ntasks: 1,
          cpus_per_task: 1,
          gpus: 0,
          time_limit_minutes: 45
        }
      }
    });
  });

  it('sends a command instead of a script in command mode', () => {
    const state = {
      ...form(),
      mode: 'command' as const,
      command: ' python3 train.py '
    };
    const { body } = buildSubmission(state, schema);
    expect(body!.command).toBe('python3 train.py');
    expect(body!.script).toBeUndefined();
  });

  it('collects every error by field key and builds no body', () => {
    const state = {
      ...emptyForm('local'),
      resources: { ...form().resources, cpus_per_task: '3' },
      name: '-x',
      env: 'not a pair'
    };
    const { body, errors } = buildSubmission(state, schema);
    expect(body).toBeNull();
    expect(Object.keys(errors).sort()).toEqual([
      'env',
      'name',
      'resources.cpus_per_task',
      'script'
    ]);
    expect(errors['resources.cpus_per_task']).toContain('limit of 2');
  });

  it('needs a cluster', () => {
    expect(buildSubmission(emptyForm(''), null).errors.cluster).toBe(
      'Choose a cluster'
    );
  });
});

describe('parseEnv', () => {
  it('reads NAME=value lines and names the bad line', () => {
    expect(parseEnv('A=1\nB= two ')).toEqual({
      ok: true,
      value: { A: '1', B: ' two' }
    });
    expect(parseEnv('A=1\n1X=2')).toEqual({
      ok: false,
      error: 'Line 2: write NAME=value (NAME of letters, digits, _)'
    });
  });
});

describe('placeServerErrors', () => {
  it('puts each error on the field it names', () => {
    const placed = placeServerErrors(
      [
        { field: 'resources.gpus', message: "partition 'local' has no GPUs" },
        { field: 'working_dir', message: "'/x' is not an existing directory" },
        { field: 'env.FOO', message: 'bad' },
        { field: 'resources.time_limit_minutes', message: 'a' },
        { field: 'resources.time_limit_minutes', message: 'b' },
        { field: 'body', message: 'is not valid JSON' },
        { field: '', message: 'the cluster is unreachable' }
      ],
      ['gpus', 'time_limit_minutes']
    );
    expect(placed.fields).toEqual({
      'resources.gpus': "partition 'local' has no GPUs",
      working_dir: "'/x' is not an existing directory",
      env: 'bad',
      'resources.time_limit_minutes': 'a; b'
    });
    expect(placed.general).toEqual([
      'body: is not valid JSON',
      'the cluster is unreachable'
    ]);
  });
});

describe('prefills', () => {
  it('submits a shell file as the batch script, in its folder', () => {
    expect(
      prefillFromFile('proj/run all.sh', '#!/bin/bash\n#SBATCH -N 1\necho\n')
    ).toEqual({
      name: 'run_all',
      workingDir: 'proj',
      mode: 'script',
      script: '#!/bin/bash\n#SBATCH -N 1\necho\n'
    });
    expect(prefillFromFile('top.sh', 'echo').workingDir).toBe('');
  });

  it("runs a Python file with the cluster's interpreter", () => {
    expect(
      prefillFromFile('a/b/train model.py', 'print(1)', '/opt/py/bin/python')
    ).toEqual({
      name: 'train_model',
      workingDir: 'a/b',
      mode: 'command',
      command: "/opt/py/bin/python 'train model.py'"
    });
  });

  it('quotes for bash', () => {
    expect(shellQuote('train.py')).toBe('train.py');
    expect(shellQuote("it's here.py")).toBe(`'it'\\''s here.py'`);
    expect(shellQuote('-rf.py')).toBe(`'./-rf.py'`);
  });

  it('resubmits a job with its resources, relative working dir and script', () => {
    const job = makeJob({
      id: 'j1',
      cluster: 'local',
      name: 'train',
      working_dir: '/home/u/lab/exp',
      resources: {
        partition: 'local',
        nodes: 1,
        time_limit_minutes: 90,
        array: null
      }
    });
    const prefill = prefillFromJob(job, '/home/u/lab', {
      cluster: 'local',
      script: '#!/bin/bash\necho again\n',
      env: { A: '1' }
    });
    expect(prefill).toEqual({
      cluster: 'local',
      name: 'train',
      workingDir: 'exp',
      resources: { partition: 'local', nodes: 1, time_limit_minutes: 90 },
      mode: 'script',
      script: '#!/bin/bash\necho again\n',
      env: 'A=1'
    });
    const state = applyPrefill(prefill, 'local', schema);
    expect(state.resources.time_limit_minutes).toBe('1:30:00');
    expect(state.resources.nodes).toBe('1');
  });

  it('asks to re-enter secret values the server did not keep', () => {
    const job = makeJob({
      id: 'j2',
      cluster: 'local',
      name: 'fetch',
      resources: { partition: 'local', nodes: 1 }
    });
    const prefill = prefillFromJob(job, '/home/u', {
      cluster: 'local',
      command: 'fetch.sh',
      env: { API_TOKEN: '', MODE: 'fast' },
      redacted_env: ['API_TOKEN']
    });
    expect(prefill.env).toBe(
      `${REENTER_PREFIX}API_TOKEN\nAPI_TOKEN=\nMODE=fast`
    );
    const state = applyPrefill(prefill, 'local', schema);
    const refused = buildSubmission(state, schema);
    expect(refused.body).toBeNull();
    expect(refused.errors.env).toContain('Re-enter the value of API_TOKEN');
    const filled = buildSubmission(
      { ...state, env: state.env.replace('API_TOKEN=', 'API_TOKEN=abc') },
      schema
    );
    expect(filled.errors).toEqual({});
    expect(filled.body?.env).toEqual({ API_TOKEN: 'abc', MODE: 'fast' });
  });

  it('keeps paths outside the root as they are', () => {
    expect(relativeToRoot('/scratch/x', '/home/u')).toBe('/scratch/x');
    expect(relativeToRoot('/home/u/a', '/home/u/')).toBe('a');
    expect(relativeToRoot('/home/user2', '/home/u')).toBe('/home/user2');
  });
});

describe('guidance in the form state', () => {
  const form = (fields: Partial<ReturnType<typeof emptyForm>> = {}) => ({
    ...emptyForm('local'),
    resources: {
      partition: 'local',
      nodes: '1',
      time_limit_minutes: '0:30:00'
    },
    ...fields
  });

  it('asks for suggestions only with something to run', () => {
    expect(suggestionRequest(form(), schema)).toBeNull();
    expect(
      suggestionRequest(form({ script: '#!/bin/bash\nmake\n' }), null)
    ).toBeNull();
    expect(
      suggestionRequest(
        form({
          script: '#!/bin/bash\nmake\n',
          name: ' build ',
          resources: { partition: 'local', nodes: 'x', memory_mb: '4G' }
        }),
        schema
      )
    ).toEqual({
      cluster: 'local',
      script: '#!/bin/bash\nmake\n',
      name: 'build',
      // The field that does not parse is left out.
      resources: { partition: 'local', memory_mb: 4096 }
    });
    expect(
      suggestionRequest(
        form({ mode: 'command', command: ' hostname ' }),
        schema
      )
    ).toMatchObject({ cluster: 'local', command: 'hostname' });
  });

  it('writes suggested values into the texts, and knows when they are there', () => {
    const texts = {
      partition: 'local',
      memory_mb: '32G',
      time_limit_minutes: '2:00:00'
    };
    const values = {
      memory_mb: 3800,
      time_limit_minutes: 15,
      unknown_field: 3
    };
    const filled = withResourceValues(schema, texts, values);
    expect(filled).toEqual({
      partition: 'local',
      memory_mb: '3800',
      time_limit_minutes: '0:15:00'
    });
    expect(holdsResourceValues(schema, texts, values)).toBe(false);
    expect(holdsResourceValues(schema, filled, values)).toBe(true);
  });

  it('drafts a template from the form, or names the fields to fix', () => {
    expect(
      templateDraft(form({ mode: 'command', command: 'make' }), schema)
    ).toEqual({
      draft: {
        cluster: 'local',
        command: 'make',
        resources: { partition: 'local', nodes: 1, time_limit_minutes: 30 }
      },
      errors: null
    });
    // Without a script: a resources-only template.
    expect(templateDraft(form(), schema).draft).not.toHaveProperty('script');
    expect(
      templateDraft(
        form({ resources: { partition: 'local', cpus_per_task: '3' } }),
        schema
      ).errors
    ).toEqual({
      'resources.cpus_per_task': expect.stringContaining('limit of 2')
    });
  });

  it('takes cluster and script or command from a template', () => {
    const base = {
      name: 't',
      description: '',
      resources: {},
      source: 'site' as const,
      read_only: true
    };
    expect(
      templateFields({
        ...base,
        cluster: 'hpc',
        script: '#!/bin/sh\n',
        command: null
      })
    ).toEqual({ cluster: 'hpc', mode: 'script', script: '#!/bin/sh\n' });
    expect(
      templateFields({ ...base, cluster: null, script: null, command: 'make' })
    ).toEqual({ mode: 'command', command: 'make' });
  });

  it('sends where a notebook job comes from, on submit and resubmit', () => {
    expect(prefillFromFile('nb/analysis.ipynb', '{}').source).toEqual({
      notebook_path: 'nb/analysis.ipynb',
      cell_id: null
    });
    expect(prefillFromFile('run.sh', 'echo').source).toBeUndefined();
    const job = makeJob({
      id: 'j1',
      cluster: 'local',
      resources: { partition: 'local' },
      provenance: {
        user: 'alice',
        notebook_path: 'nb/analysis.ipynb',
        cell_id: 'c-1',
        git_commit: null,
        git_dirty: null,
        modules: []
      }
    });
    const prefill = prefillFromJob(job, '/home/u', {
      cluster: 'local',
      command: 'python3 step.py'
    });
    expect(prefill.source).toEqual({
      notebook_path: 'nb/analysis.ipynb',
      cell_id: 'c-1'
    });
    const { body } = buildSubmission(
      applyPrefill(prefill, 'local', schema),
      schema
    );
    expect(body!.source).toEqual({
      notebook_path: 'nb/analysis.ipynb',
      cell_id: 'c-1'
    });
    expect(
      buildSubmission(
        applyPrefill({ command: 'x', mode: 'command' }, 'local', schema),
        schema
      ).body
    ).not.toHaveProperty('source');
  });
});
