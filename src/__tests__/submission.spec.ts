import {
  applyPrefill,
  buildSubmission,
  emptyForm,
  parseEnv,
  placeServerErrors,
  prefillFromFile,
  prefillFromJob,
  relativeToRoot,
  shellQuote
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

  it('keeps paths outside the root as they are', () => {
    expect(relativeToRoot('/scratch/x', '/home/u')).toBe('/scratch/x');
    expect(relativeToRoot('/home/u/a', '/home/u/')).toBe('a');
    expect(relativeToRoot('/home/user2', '/home/u')).toBe('/home/user2');
  });
});
