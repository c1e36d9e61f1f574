import { Signal } from '@lumino/signaling';

import { APIError } from '../api';
import { ClusterDetails } from '../clustermodel';
import { SubmitPanel } from '../components/submitpanel';
import { JobsModel } from '../model';
import type { IFormPrefill } from '../submission';
import type { IEventEmission, IJobSubmission } from '../types';
import { change, click } from './dom';
import {
  FakeAPI,
  makeCluster,
  makeJob,
  makePartition,
  makeSchema,
  sleep
} from './fixtures';
import { Widget } from '@lumino/widgets';

describe('the submit form', () => {
  let api: FakeAPI;
  let model: JobsModel;
  let details: ClusterDetails;
  let panel: SubmitPanel;
  let submitted: IJobSubmission[];
  let opened: string[];

  async function open(prefill: IFormPrefill = {}): Promise<HTMLElement> {
    panel = new SubmitPanel({
      model,
      details,
      prefill,
      defaultCluster: '',
      submit: async body => {
        submitted.push(body);
        return api.submit(body);
      },
      onOpenJob: id => opened.push(id)
    });
    Widget.attach(panel, document.body);
    await settle();
    return panel.node;
  }

  async function settle(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await sleep(0);
      panel.update();
      await panel.renderPromise;
    }
    await sleep(0);
  }

  const field = (name: string) =>
    panel.node.querySelector<HTMLInputElement>(`[name="${name}"]`)!;
  const error = (key: string) =>
    panel.node.querySelector(`[data-pwlab-error="${key}"]`)?.textContent;

  beforeEach(async () => {
    api = new FakeAPI();
    api.clusters = [
      makeCluster({ id: 'hpc', name: 'HPC' }),
      makeCluster({ id: 'local', kind: 'local' })
    ];
    const hpc = [
      makePartition({
        name: 'cpu',
        default: true,
        cpus_per_node: 8,
        max_time_minutes: 60
      }),
      makePartition({
        name: 'gpu',
        cpus_per_node: 32,
        gpus_per_node: 4,
        max_time_minutes: 2880,
        accounts: ['physics', 'chem']
      })
    ];
    api.details.set('hpc', {
      ...api.clusters[0],
      partitions: hpc,
      options_schema: makeSchema(hpc, { array: true })
    });
    const local = [
      makePartition({
        name: 'local',
        default: true,
        cpus_per_node: 2,
        max_nodes: 1
      })
    ];
    api.details.set('local', {
      ...api.clusters[1],
      partitions: local,
      options_schema: makeSchema(local)
    });
    api.jobs = [
      makeJob({
        id: 'dep000000001',
        cluster: 'hpc',
        name: 'prep',
        native_id: '7'
      })
    ];
    model = new JobsModel({
      api,
      events: new Signal<object, IEventEmission>({}),
      autoStart: false
    });
    await model.refresh();
    details = new ClusterDetails({ api });
    submitted = [];
    opened = [];
  });

  afterEach(() => {
    panel.dispose();
    model.dispose();
    details.dispose();
  });

  it("generates the fields from the cluster's options schema", async () => {
    const node = await open();
    expect(node.querySelector('form')!.getAttribute('data-pwlab-ready')).toBe(
      'true'
    );
    const names = Array.from(
      node.querySelectorAll('.jp-pwlab-resources [name]')
    ).map(e => e.getAttribute('name'));
    expect(names).toEqual([
      'nodes',
      'ntasks',
      'cpus_per_task',
      'gpus',
      'memory_mb',
      'time_limit_minutes',
      'array',
      'account',
      'qos'
    ]);
    const partition = field('partition') as unknown as HTMLSelectElement;
    expect(Array.from(partition.options).map(o => o.value)).toEqual([
      'cpu',
      'gpu'
    ]);
    expect(partition.value).toBe('cpu');
    expect(field('nodes').value).toBe('1');
    expect(
      node.querySelector('[data-pwlab-field="resources.time_limit_minutes"]')!
        .textContent
    ).toContain("max 1:00:00 (1 h) on partition 'cpu'");
    // A label for every control.
    for (const control of Array.from(
      node.querySelectorAll('input[type="text"], select, textarea')
    )) {
      if (control.closest('.jp-pwlab-field')) {
        expect(node.querySelector(`label[for="${control.id}"]`)).not.toBeNull();
      }
    }
  });

  it('flags an over-limit walltime inline with the limit, and follows the partition', async () => {
    await open();
    change(field('time_limit_minutes'), '2-00:00:00');
    await settle();
    expect(error('resources.time_limit_minutes')).toBe(
      "2-00:00:00 (2 d) exceeds the limit of 1:00:00 (1 h) on partition 'cpu'"
    );
    expect(field('time_limit_minutes').getAttribute('aria-invalid')).toBe(
      'true'
    );
    change(field('partition'), 'gpu');
    await settle();
    expect(error('resources.time_limit_minutes')).toBeUndefined();
  });

  it('does not submit while a field is invalid', async () => {
    await open();
    change(field('cpus_per_task'), '9');
    change(field('script'), '#!/bin/bash\necho hi\n');
    await settle();
    click(panel.node.querySelector('[data-pwlab-submit]')!);
    await settle();
    expect(submitted).toEqual([]);
    expect(error('resources.cpus_per_task')).toContain('limit of 8');
    expect(panel.node.querySelector('.jp-pwlab-form-invalid')).not.toBeNull();
  });

  it('submits the body the server expects', async () => {
    await open({ workingDir: 'exp', name: 'train' });
    change(field('time_limit_minutes'), '1:30:00');
    change(field('partition'), 'gpu');
    change(field('gpus'), '2');
    change(field('array'), '1-10');
    // On gpu the account is a choice among the partition's accounts.
    const account = field('account') as unknown as HTMLSelectElement;
    expect(account.tagName).toBe('SELECT');
    expect(Array.from(account.options).map(o => o.value)).toEqual([
      '',
      'physics',
      'chem'
    ]);
    change(field('account'), 'chem');
    change(field('script'), '#!/bin/bash\necho hi\n');
    await settle();
    const after = panel.node.querySelector<HTMLSelectElement>(
      'select[name="after"]'
    )!;
    after.options[0].selected = true;
    after.dispatchEvent(new Event('change', { bubbles: true }));
    await settle();
    click(panel.node.querySelector('[data-pwlab-submit]')!);
    await settle();
    expect(submitted).toEqual([
      {
        cluster: 'hpc',
        name: 'train',
        working_dir: 'exp',
        script: '#!/bin/bash\necho hi\n',
        after: ['dep000000001'],
        resources: {
          partition: 'gpu',
          nodes: 1,
          ntasks: 1,
          cpus_per_task: 1,
          gpus: 2,
          time_limit_minutes: 90,
          array: '1-10',
          account: 'chem'
        }
      }
    ]);
    const success = panel.node.querySelector('[data-pwlab-submitted-job]')!;
    expect(success.getAttribute('data-pwlab-submitted-job')).toBe(
      'new00000001'
    );
    click(success.querySelector('button')!);
    expect(opened).toEqual(['new00000001']);
  });

  it('puts server errors on the fields they name', async () => {
    api.onSubmit = () => {
      throw new APIError('invalid', 400, [
        { field: 'working_dir', message: "'/x' is not an existing directory" },
        { field: 'resources.gpus', message: 'no GPUs here' }
      ]);
    };
    await open({ script: '#!/bin/bash\necho\n' });
    click(panel.node.querySelector('[data-pwlab-submit]')!);
    await settle();
    expect(error('working_dir')).toBe("'/x' is not an existing directory");
    expect(error('resources.gpus')).toBe('no GPUs here');
    expect(error('general')).toBeUndefined();
    // Editing the field clears its server error.
    change(field('working_dir'), 'elsewhere');
    await settle();
    expect(error('working_dir')).toBeUndefined();
  });

  it('keeps what was typed when the cluster changes', async () => {
    await open({ resources: { nodes: 1 } });
    change(field('time_limit_minutes'), '30');
    change(field('cluster'), 'local');
    await settle();
    await settle();
    expect(
      panel.node.querySelector('form')!.getAttribute('data-pwlab-form-cluster')
    ).toBe('local');
    expect(field('time_limit_minutes').value).toBe('30');
    expect((field('partition') as unknown as HTMLSelectElement).value).toBe(
      'local'
    );
    expect(panel.node.querySelector('[name="array"]')).toBeNull();
  });

  it('opens prefilled from a file as a command', async () => {
    await open({
      cluster: 'local',
      mode: 'command',
      command: 'python3 train.py',
      workingDir: 'proj',
      name: 'train'
    });
    expect(field('command').value).toBe('python3 train.py');
    expect(field('working_dir').value).toBe('proj');
    expect((field('cluster') as unknown as HTMLSelectElement).value).toBe(
      'local'
    );
  });
});
