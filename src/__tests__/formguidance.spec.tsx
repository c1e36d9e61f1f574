import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

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
  makePartition,
  makeSchema,
  sleep,
  until
} from './fixtures';
import { FIVE_RUNS, templates } from './guidancedata';

describe('suggestions and templates in the submit form', () => {
  let api: FakeAPI;
  let model: JobsModel;
  let details: ClusterDetails;
  let panel: SubmitPanel;
  let submitted: IJobSubmission[];

  const SCRIPT = '#!/bin/bash\npython preprocess.py --input data/\n';

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
      onOpenJob: () => undefined,
      guidance: api,
      suggestionDelay: 10
    });
    Widget.attach(panel, document.body);
    await settle();
    await until(
      () =>
        panel.node.querySelector('form')?.getAttribute('data-pwlab-ready') ===
        'true'
    );
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

  /**
   * Wait until `selector` is in the form (rendering as it goes).
   */
  async function shown(selector: string): Promise<HTMLElement> {
    await until(() => {
      panel.update();
      return !!panel.node.querySelector(selector);
    });
    await settle();
    return panel.node.querySelector<HTMLElement>(selector)!;
  }

  const field = (name: string) =>
    panel.node.querySelector<HTMLInputElement>(`[name="${name}"]`)!;

  /**
   * Answer the JupyterLab dialog in front: fill its inputs, press a button.
   */
  async function answerDialog(
    button: string,
    inputs: Record<string, string> = {}
  ): Promise<void> {
    await until(() => !!document.querySelector('.jp-Dialog'));
    const dialog = document.querySelector('.jp-Dialog')!;
    for (const [name, value] of Object.entries(inputs)) {
      change(
        dialog.querySelector<HTMLInputElement>(`[name="${name}"]`)!,
        value
      );
    }
    const target = Array.from(dialog.querySelectorAll('button')).find(
      b => b.textContent === button
    )!;
    target.click();
    await until(() => !document.querySelector('.jp-Dialog'));
    await sleep(20);
    await settle();
  }

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
        memory_mb_per_node: 65536,
        max_time_minutes: 240
      }),
      makePartition({
        name: 'gpu',
        cpus_per_node: 32,
        gpus_per_node: 4,
        memory_mb_per_node: 262144,
        max_time_minutes: 2880
      })
    ];
    api.details.set('hpc', {
      ...api.clusters[0],
      partitions: hpc,
      options_schema: makeSchema(hpc)
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
    api.templates = templates();
    model = new JobsModel({
      api,
      events: new Signal<object, IEventEmission>({}),
      autoStart: false
    });
    await model.refresh();
    details = new ClusterDetails({ api });
    submitted = [];
  });

  afterEach(() => {
    panel.dispose();
    model.dispose();
    details.dispose();
    document.querySelectorAll('.jp-Dialog').forEach(d => d.remove());
  });

  describe('the suggestion banner', () => {
    it('shows what earlier runs used and fills the form only on click', async () => {
      api.onSuggest = () => FIVE_RUNS;
      await open({
        cluster: 'hpc',
        name: 'preprocess',
        script: SCRIPT,
        resources: { memory_mb: 32768, time_limit_minutes: 120 }
      });
      const banner = await shown('[data-pwlab-suggestion]');
      expect(api.suggestionRequests[0]).toEqual({
        cluster: 'hpc',
        name: 'preprocess',
        script: SCRIPT,
        resources: {
          partition: 'cpu',
          nodes: 1,
          ntasks: 1,
          cpus_per_task: 1,
          gpus: 0,
          memory_mb: 32768,
          time_limit_minutes: 120
        }
      });
      expect(
        banner.querySelector('.jp-pwlab-suggestion-message')!.textContent
      ).toBe(
        'Last 5 runs used at most 3.1 GiB and 9 min; you asked for 32 GiB and 2 h.'
      );
      expect(
        banner.querySelector('.jp-pwlab-suggestion-values')!.textContent
      ).toBe(
        'Use these memory 3.7 GiB, time limit 15 min (from 5 earlier runs of this script)'
      );
      // Nothing changed yet.
      await sleep(30);
      await settle();
      expect(field('memory_mb').value).toBe('32768');
      expect(field('time_limit_minutes').value).toBe('2:00:00');

      click(banner.querySelector('[data-pwlab-suggestion-apply]')!);
      await settle();
      expect(field('memory_mb').value).toBe('3800');
      expect(field('time_limit_minutes').value).toBe('0:15:00');
      expect(field('cpus_per_task').value).toBe('1');
      expect(
        panel.node.querySelector('[data-pwlab-suggestion-applied]')!.textContent
      ).toBe(
        'The form now asks for memory 3.7 GiB, time limit 15 min, from 5 earlier runs of this script.'
      );
      click(panel.node.querySelector('[data-pwlab-submit]')!);
      await settle();
      expect(submitted[0].resources).toMatchObject({
        memory_mb: 3800,
        time_limit_minutes: 15
      });
    });

    it('asks only once the form names something to run, debounced', async () => {
      api.onSuggest = () => FIVE_RUNS;
      await open({ cluster: 'hpc' });
      await sleep(40);
      expect(api.suggestionRequests).toEqual([]);
      change(field('script'), '#!/bin/bash\nsleep 1');
      change(field('script'), '#!/bin/bash\nsleep 10');
      await settle();
      await until(() => api.suggestionRequests.length > 0);
      await sleep(40);
      expect(api.suggestionRequests.map(r => r.script)).toEqual([
        '#!/bin/bash\nsleep 10'
      ]);
    });

    it('shows nothing without history, and ignores errors quietly', async () => {
      await open({ cluster: 'hpc', script: SCRIPT });
      await until(() => api.suggestionRequests.length > 0);
      await settle();
      expect(panel.node.querySelector('[data-pwlab-suggestion]')).toBeNull();

      api.onSuggest = () => {
        throw new APIError('history unavailable', 503);
      };
      change(field('name'), 'again');
      await until(() => api.suggestionRequests.length > 1);
      await settle();
      expect(panel.node.querySelector('[data-pwlab-suggestion]')).toBeNull();
      expect(panel.node.querySelector('.jp-pwlab-error')).toBeNull();
    });
  });

  describe('templates', () => {
    it('lists site templates as read-only and applies a template', async () => {
      await open({ cluster: 'hpc' });
      const select = (await shown(
        'select[name="template"]'
      )) as HTMLSelectElement;
      const groups = Array.from(select.querySelectorAll('optgroup')).map(g => [
        g.label,
        Array.from(g.querySelectorAll('option')).map(o => o.textContent)
      ]);
      expect(groups).toEqual([
        ['Site templates (read-only)', ['gpu-small (read-only)']],
        ['My templates', ['quick test']]
      ]);
      const apply = panel.node.querySelector<HTMLButtonElement>(
        '[data-pwlab-template-apply]'
      )!;
      expect(apply.disabled).toBe(true);

      change(select, 'gpu-small');
      await settle();
      // A site template cannot be deleted.
      expect(
        panel.node.querySelector('[data-pwlab-template-delete]')
      ).toBeNull();
      click(apply);
      await until(() => field('partition')?.value === 'gpu');
      await settle();
      expect(field('gpus').value).toBe('1');
      expect(field('time_limit_minutes').value).toBe('1:00:00');
      expect(field('script').value).toBe(
        '#!/bin/bash\nmodule load cuda\npython train.py\n'
      );

      change(select, 'quick test');
      await settle();
      click(apply);
      await until(
        () =>
          panel.node
            .querySelector('form')!
            .getAttribute('data-pwlab-form-cluster') === 'local' &&
          !!field('cpus_per_task')
      );
      await settle();
      expect(field('cpus_per_task').value).toBe('2');
      expect(field('time_limit_minutes').value).toBe('0:05:00');
      expect(field('command').value).toBe('python3 -c "print(42)"');
    });

    it('saves the form as a template under a name asked in a dialog', async () => {
      await open({ cluster: 'hpc', script: SCRIPT });
      change(field('memory_mb'), '4G');
      change(field('time_limit_minutes'), '30');
      await settle();
      click(await shown('[data-pwlab-template-save]'));
      await answerDialog('Save', {
        'template-name': 'preprocess',
        'template-description': 'The nightly preprocessing'
      });
      expect(api.savedTemplates).toEqual([
        {
          name: 'preprocess',
          description: 'The nightly preprocessing',
          cluster: 'hpc',
          resources: {
            partition: 'cpu',
            nodes: 1,
            ntasks: 1,
            cpus_per_task: 1,
            gpus: 0,
            memory_mb: 4096,
            time_limit_minutes: 30
          },
          script: SCRIPT
        }
      ]);
      await until(() =>
        (
          panel.node.querySelector('[role="status"]')?.textContent ?? ''
        ).includes('Saved')
      );
      const select = field('template') as unknown as HTMLSelectElement;
      expect(select.value).toBe('preprocess');
      expect(Array.from(select.options).map(o => o.value)).toContain(
        'preprocess'
      );
    });

    it('shows why the server refused a template: a site name (409), a bad field (400)', async () => {
      await open({ cluster: 'hpc', script: SCRIPT });
      click(await shown('[data-pwlab-template-save]'));
      await answerDialog('Save', { 'template-name': 'gpu-small' });
      const error = () =>
        panel.node.querySelector('[data-pwlab-error="template"]')?.textContent;
      await until(() => !!error());
      expect(error()).toBe(
        "“gpu-small” is a site template, which only administrators change: choose another name. ('gpu-small' is a site template and cannot be replaced)"
      );

      click(panel.node.querySelector('[data-pwlab-template-save]')!);
      await answerDialog('Save', { 'template-name': 'my/template' });
      await until(() => error()?.startsWith('Name') ?? false);
      expect(error()).toBe('Name: Use letters, digits, spaces, _ . and -');
      expect(api.templates.map(t => t.name)).toEqual([
        'gpu-small',
        'quick test'
      ]);
    });

    it('deletes a template of the user after confirmation', async () => {
      await open({ cluster: 'hpc' });
      const select = (await shown(
        'select[name="template"]'
      )) as HTMLSelectElement;
      change(select, 'quick test');
      await settle();
      click(panel.node.querySelector('[data-pwlab-template-delete]')!);
      await answerDialog('Delete');
      await until(() => api.deletedTemplates.length > 0);
      await until(() => {
        panel.update();
        return !Array.from(select.options).some(o => o.value === 'quick test');
      });
      expect(api.deletedTemplates).toEqual(['quick test']);
      expect(select.value).toBe('');
    });
  });

  it('sends the notebook a job comes from', async () => {
    await open({
      cluster: 'hpc',
      script: SCRIPT,
      source: { notebook_path: 'experiments/analysis.ipynb', cell_id: null }
    });
    click(panel.node.querySelector('[data-pwlab-submit]')!);
    await until(() => submitted.length > 0);
    expect(submitted[0].source).toEqual({
      notebook_path: 'experiments/analysis.ipynb',
      cell_id: null
    });
  });
});
