/**
 * Guidance for researchers, end to end against the real server extension and
 * its `local` cluster (2 slots, 60 min limit): why a job waits, when it
 * should start, what a finished job used, and what to ask for next time.
 */
import { expect, test } from '@jupyterlab/galata';
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';

import {
  currentForm,
  jobDetail,
  jobRow,
  keepScreenshot,
  openSidebar,
  submitByAPI
} from './helpers';

/**
 * Cancel jobs whatever the test did (409: already ended).
 */
async function cancelAll(
  page: IJupyterLabPageFixture,
  ids: string[]
): Promise<void> {
  for (const id of ids) {
    await page.request.delete(`/parallelworks-lab/jobs/${id}`);
  }
}

/**
 * A job's record as the server has it.
 */
async function getJob(
  page: IJupyterLabPageFixture,
  id: string
): Promise<Record<string, unknown>> {
  const response = await page.request.get(`/parallelworks-lab/jobs/${id}`);
  expect(response.status()).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

/**
 * Wait until the server says a job has ended.
 */
async function waitForEnd(
  page: IJupyterLabPageFixture,
  id: string,
  timeout = 60_000
): Promise<void> {
  await expect
    .poll(async () => (await getJob(page, id)).terminal, { timeout })
    .toBe(true);
}

test.describe('Guidance', () => {
  test('a job that depends on another says why it waits', async ({
    page
  }, testInfo) => {
    const ids: string[] = [];
    try {
      const first = await submitByAPI(page, {
        cluster: 'local',
        name: 'guidance-first',
        script: '#!/bin/bash\nsleep 60\n',
        resources: { time_limit_minutes: 2 }
      });
      ids.push(first);
      const second = await submitByAPI(page, {
        cluster: 'local',
        name: 'guidance-second',
        script: '#!/bin/bash\necho after\n',
        resources: { time_limit_minutes: 1 },
        after: [first]
      });
      ids.push(second);

      await openSidebar(page);
      const row = jobRow(page, second);
      await expect(row).toHaveAttribute('data-state', 'QUEUED');
      // The table keeps the code short, with the sentence as its tooltip.
      const reason = row.locator('.jp-pwlab-job-reason');
      await expect(reason).toHaveText('Dependency');
      await expect(reason).toHaveAttribute(
        'title',
        /another job it depends on/
      );

      await row.click();
      const detail = jobDetail(page, second);
      const waiting = detail.locator('[data-pwlab-waiting="Dependency"]');
      await expect(waiting).toBeVisible();
      await expect(waiting.locator('[data-pwlab-reason-summary]')).toHaveText(
        'It waits for another job it depends on to finish.'
      );
      await expect(waiting.locator('[data-pwlab-reason-advice]')).toContainText(
        'once that job has completed successfully'
      );
      await expect(waiting.locator('[data-pwlab-reason-code]')).toHaveText(
        'Scheduler reason: Dependency'
      );
      await keepScreenshot(page, testInfo, 'reason-dependency');
    } finally {
      await cancelAll(page, ids.reverse());
    }
  });

  test('a job queued behind a running one shows when it should start', async ({
    page
  }, testInfo) => {
    const cluster = await (
      await page.request.get('/parallelworks-lab/clusters/local')
    ).json();
    const partition =
      cluster.partitions.find((p: { default: boolean }) => p.default) ??
      cluster.partitions[0];
    const cpus = partition.cpus_per_node as number;
    const ids: string[] = [];
    try {
      // The running job takes every CPU for at most 3 minutes...
      const running = await submitByAPI(page, {
        cluster: 'local',
        name: 'guidance-fills-the-machine',
        script: '#!/bin/bash\nsleep 170\n',
        resources: { cpus_per_task: cpus, time_limit_minutes: 3 }
      });
      ids.push(running);
      await expect
        .poll(async () => (await getJob(page, running)).state, {
          timeout: 30_000
        })
        .toBe('RUNNING');
      // ... so this one waits for it, and can start when its limit is up.
      const queued = await submitByAPI(page, {
        cluster: 'local',
        name: 'guidance-behind',
        script: '#!/bin/bash\necho my turn\n',
        resources: { cpus_per_task: cpus, time_limit_minutes: 1 }
      });
      ids.push(queued);

      await openSidebar(page);
      const row = jobRow(page, queued);
      await expect(row).toHaveAttribute('data-state', 'QUEUED');
      await row.click();
      const detail = jobDetail(page, queued);
      await expect(
        detail.locator('[data-pwlab-waiting="Resources"]')
      ).toBeVisible();
      const estimate = detail.locator('[data-pwlab-estimate]');
      await expect(estimate).toHaveText(
        /^Expected to start: .+ \(in (\d+ min|less than a minute)\) — the scheduler's estimate, it can change$/
      );
      // The estimate is the running job's end by its time limit.
      const when = Date.parse(
        (await estimate.getAttribute('data-pwlab-estimate'))!
      );
      const started = Date.parse(
        (await getJob(page, running)).started_at as string
      );
      expect(Math.abs(when - (started + 3 * 60_000))).toBeLessThan(5_000);
      await keepScreenshot(page, testInfo, 'start-estimate');
    } finally {
      await cancelAll(page, ids.reverse());
    }
  });

  test('a finished job shows what it used', async ({ page }, testInfo) => {
    const id = await submitByAPI(page, {
      cluster: 'local',
      name: 'guidance-measured',
      // Hold 64 MiB (touched, so it is resident) and burn CPU for 3 s.
      script: [
        '#!/bin/bash',
        "python3 - <<'PY'",
        'import time',
        'block = b"x" * (64 * 1024 * 1024)',
        'end = time.time() + 3',
        'while time.time() < end:',
        '    pass',
        'PY',
        ''
      ].join('\n'),
      resources: { time_limit_minutes: 5, memory_mb: 1024 }
    });
    await openSidebar(page);
    const row = jobRow(page, id);
    await expect(row).toHaveAttribute('data-state', 'COMPLETED', {
      timeout: 60_000
    });
    await row.click();
    const detail = jobDetail(page, id);
    const card = detail.locator('[data-pwlab-usage="measured"]');
    await expect(card).toBeVisible();
    await expect(card.locator('[data-pwlab-usage-measure="time"]')).toHaveText(
      /^\d+ s of a 5 min limit \(\d+%\)$/
    );
    await expect(
      card.locator('[data-pwlab-usage-measure="memory"]')
    ).toHaveText(/^peak \d+(\.\d)? MiB of 1 GiB requested \(\d+%\)$/);
    await expect(
      card.locator('[data-pwlab-usage-measure="cpu"]')
    ).toContainText('busy on 1 CPU');
    await expect(card.locator('.jp-pwlab-usage-source')).toHaveText(
      'measured while the job ran'
    );
    // It asked for far more than it used: a hint says so.
    await expect(
      card.locator('.jp-pwlab-usage-hints li').first()
    ).toBeVisible();
    await keepScreenshot(page, testInfo, 'efficiency-card');
  });

  test('the form suggests what earlier runs of the same script used', async ({
    page
  }, testInfo) => {
    const script = `#!/bin/bash\n# guidance suggestion ${Date.now()}\nsleep 3\n`;
    const runs: string[] = [];
    for (let i = 0; i < 2; i++) {
      runs.push(
        await submitByAPI(page, {
          cluster: 'local',
          name: 'guidance-again',
          script,
          resources: { time_limit_minutes: 30, memory_mb: 2048 }
        })
      );
    }
    for (const id of runs) {
      await waitForEnd(page, id);
    }

    await page.keyboard.press('Control+Shift+C');
    await page.locator('#modal-command-palette input').fill('New HPC Job');
    await page.keyboard.press('Enter');
    const form = await currentForm(page);
    await form.locator('input[name="time_limit_minutes"]').fill('0:30:00');
    await form.locator('input[name="memory_mb"]').fill('2G');
    await form.locator('input[name="name"]').fill('guidance-again');
    await form.locator('textarea[name="script"]').fill(script);

    const banner = form.locator('[data-pwlab-suggestion]');
    await expect(banner).toBeVisible();
    await expect(banner.locator('.jp-pwlab-suggestion-message')).toHaveText(
      /^The last 2 runs used at most .+; you asked for 2(\.0)? GiB and 30 min\.$/
    );
    // Nothing changes before the click.
    await expect(form.locator('input[name="time_limit_minutes"]')).toHaveValue(
      '0:30:00'
    );
    await banner.scrollIntoViewIfNeeded();
    await keepScreenshot(page, testInfo, 'suggestion');
    await banner.locator('[data-pwlab-suggestion-apply]').click();
    await expect(form.locator('input[name="time_limit_minutes"]')).toHaveValue(
      '0:05:00'
    );
    await expect(form.locator('[data-pwlab-suggestion-applied]')).toBeVisible();
  });
});
