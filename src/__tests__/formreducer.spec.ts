import {
  initialFormState,
  submitFormReducer,
  type ISubmitFormState,
  type SubmitFormAction
} from '../formreducer';
import type { ITemplate } from '../types';
import { makeJob, makePartition, makeSchema } from './fixtures';

const hpc = makeSchema([
  makePartition({ name: 'cpu', default: true }),
  makePartition({ name: 'gpu', gpus_per_node: 4 })
]);
const small = makeSchema([makePartition({ name: 'local', default: true })]);

function template(fields: Partial<ITemplate>): ITemplate {
  return {
    name: 't',
    description: '',
    cluster: null,
    resources: {},
    script: null,
    command: null,
    source: 'user',
    read_only: false,
    ...fields
  };
}

/**
 * The state after each action in turn, checking on the way that no action
 * changes the state it was given (React keeps the old one).
 */
function run(
  state: ISubmitFormState,
  ...actions: SubmitFormAction[]
): ISubmitFormState {
  for (const action of actions) {
    const before = JSON.stringify({ ...state, touched: [...state.touched] });
    const next = submitFormReducer(state, action);
    expect(JSON.stringify({ ...state, touched: [...state.touched] })).toBe(
      before
    );
    state = next;
  }
  return state;
}

/**
 * A submit the server refused, with errors on `fields`.
 */
function refused(fields: Record<string, string>): SubmitFormAction[] {
  return [
    { type: 'attempt' },
    { type: 'submitStart' },
    { type: 'submitFailed', general: [], fields }
  ];
}

/**
 * A form open on `hpc` with its resource texts made.
 */
function onHpc(): ISubmitFormState {
  return run(initialFormState({ resources: { nodes: 2 } }), {
    type: 'fillTexts',
    cluster: 'hpc',
    schema: hpc
  });
}

describe('the submit form reducer', () => {
  it('makes the first resource texts from the prefill', () => {
    const state = onHpc();
    expect(state.textsFor).toBe('hpc');
    expect(state.form.cluster).toBe('hpc');
    expect(state.form.resources.nodes).toBe('2');
    expect(state.form.resources.partition).toBe('cpu');
  });

  it('keeps what was typed when the cluster changes, where the field exists', () => {
    const state = run(
      onHpc(),
      {
        type: 'editResource',
        key: 'resources.ntasks',
        name: 'ntasks',
        value: '6'
      },
      {
        type: 'editResource',
        key: 'resources.partition',
        name: 'partition',
        value: 'gpu'
      },
      { type: 'edit', key: 'cluster', change: { cluster: 'local' } },
      { type: 'fillTexts', cluster: 'local', schema: small }
    );
    expect(state.textsFor).toBe('local');
    expect(state.form.resources.ntasks).toBe('6');
    // `gpu` is no partition of the new cluster: its default instead.
    expect(state.form.resources.partition).toBe('local');
    // The prefill's nodes were typed over by its texts on `hpc`: kept.
    expect(state.form.resources.nodes).toBe('2');
  });

  it('marks an edited field touched and drops only its server error', () => {
    let state = run(onHpc(), ...refused({ name: 'taken', script: 'empty' }));
    state = run(state, {
      type: 'edit',
      key: 'name',
      change: { name: 'run 2' }
    });
    expect(state.form.name).toBe('run 2');
    expect(state.touched.has('name')).toBe(true);
    expect(state.serverErrors).toEqual({ script: 'empty' });
  });

  it('forgets the submitted job once the form changes', () => {
    const job = makeJob({ id: 'j1' });
    let state = run(
      onHpc(),
      { type: 'submitStart' },
      { type: 'submitDone', job }
    );
    expect(state.submitted).toBe(job);
    expect(state.submitting).toBe(false);
    state = run(state, {
      type: 'editResource',
      key: 'resources.nodes',
      name: 'nodes',
      value: '3'
    });
    expect(state.submitted).toBeNull();
    expect(state.form.resources.nodes).toBe('3');
    expect(state.form.resources.partition).toBe('cpu');
  });

  it('keeps field errors when a failure placed none on fields', () => {
    let state = run(onHpc(), ...refused({ nodes: 'too many' }));
    state = run(
      state,
      { type: 'attempt' },
      { type: 'submitStart' },
      {
        type: 'submitFailed',
        general: ['network down']
      }
    );
    expect(state.serverErrors).toEqual({ nodes: 'too many' });
    expect(state.general).toEqual(['network down']);
    expect(state.submitting).toBe(false);
    state = run(state, { type: 'attempt' });
    expect(state.attempted).toBe(true);
    expect(state.general).toEqual([]);
  });

  it('applies a template: its run, its resources on the next texts, a fresh start', () => {
    let state = run(
      onHpc(),
      { type: 'edit', key: 'name', change: { name: 'mine' } },
      ...refused({ name: 'taken' }),
      {
        type: 'applyTemplate',
        template: template({
          cluster: 'gone',
          resources: { nodes: 4, partition: 'gpu' },
          command: 'hostname'
        }),
        cluster: 'hpc',
        clusters: ['hpc', 'local']
      }
    );
    // A cluster that no longer exists is not taken.
    expect(state.form.cluster).toBe('hpc');
    expect(state.form.mode).toBe('command');
    expect(state.form.command).toBe('hostname');
    expect(state.form.name).toBe('mine');
    expect(state.touched.size).toBe(0);
    expect(state.serverErrors).toEqual({});
    expect(state.attempted).toBe(false);
    expect(state.textsFor).toBeNull();
    state = run(state, { type: 'fillTexts', cluster: 'hpc', schema: hpc });
    expect(state.form.resources.nodes).toBe('4');
    expect(state.form.resources.partition).toBe('gpu');
  });

  it('takes a template cluster that exists', () => {
    const state = run(onHpc(), {
      type: 'applyTemplate',
      template: template({ cluster: 'local', script: '#!/bin/sh\n' }),
      cluster: 'hpc',
      clusters: ['hpc', 'local']
    });
    expect(state.form.cluster).toBe('local');
    expect(state.form.mode).toBe('script');
  });

  it('applies a suggestion to the resource texts and shows their errors', () => {
    const state = run(onHpc(), {
      type: 'applySuggestion',
      schema: hpc,
      values: { cpus_per_task: 8, time_limit_minutes: 90 }
    });
    expect(state.form.resources.cpus_per_task).toBe('8');
    expect(state.form.resources.time_limit_minutes).toBe('1:30:00');
    expect([...state.touched].sort()).toEqual([
      'resources.cpus_per_task',
      'resources.time_limit_minutes'
    ]);
  });

  it('touches the fields a template draft found wrong', () => {
    const state = run(
      onHpc(),
      { type: 'edit', key: 'name', change: {} },
      { type: 'touch', keys: ['script', 'resources.nodes'] }
    );
    expect([...state.touched].sort()).toEqual([
      'name',
      'resources.nodes',
      'script'
    ]);
  });
});
