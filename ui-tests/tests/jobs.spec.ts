/**
 * What a researcher does from the HPC Jobs panel, end to end against the
 * real server extension and its `local` cluster (2 slots, 60 min limit).
 */
import { expect, test } from '@jupyterlab/galata';
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { TestInfo } from '@playwright/test';

import {
  currentForm,
  jobDetail,
  jobRow,
  keepScreenshot,
  openSidebar,
  submitByAPI
} from './helpers';

test.describe('HPC Jobs panel', () => {
  test('submit a script from the form, follow it to COMPLETED and read its log', async ({
    page
  }, testInfo) => {
    const sidebar = await openSidebar(page);

    // The cluster browser: the local cluster's partition with its limits.
    await sidebar
      .locator('[data-cluster-id="local"] .jp-pwlab-cluster-toggle')
      .click();
    const partition = sidebar.locator('[data-partition="local"]');
    await expect(partition).toContainText('nodes idle');
    await expect(partition).toContainText('max 1 h');
    await partition.locator('[data-pwlab-new-job="local"]').click();

    const form = await currentForm(page);
    await form.locator('select[name="partition"]').selectOption('local');
    await expect(form.locator('[data-pwlab-partition="local"]')).toContainText(
      '2 CPUs'
    );
    await form.locator('input[name="time_limit_minutes"]').fill('0:05:00');
    await expect(
      form.locator('[data-pwlab-field="resources.time_limit_minutes"]')
    ).toContainText('= 0:05:00 (5 min)');
    await form.locator('input[name="name"]').fill('hello-e2e');
    await form
      .locator('textarea[name="script"]')
      .fill(
        '#!/bin/bash\necho "hello from pwlab"\nsleep 6\necho "second part"\necho "to stderr" >&2\n'
      );
    await keepScreenshot(page, testInfo, 'form-filled');
    await form.locator('[data-pwlab-submit]').click();

    const success = form.locator('[data-pwlab-submitted-job]');
    await expect(success).toBeVisible();
    const id = (await success.getAttribute('data-pwlab-submitted-job'))!;

    // The row goes live, and the detail follows the log while it runs.
    const row = jobRow(page, id);
    await expect(row).toHaveAttribute('data-state', 'RUNNING');
    await expect(row).toContainText('hello-e2e');
    await row.click();
    const detail = jobDetail(page, id);
    const stdout = detail.locator('[data-pwlab-log="stdout"]');
    await expect(stdout).toContainText('hello from pwlab');
    await expect(detail).toHaveAttribute('data-state', 'RUNNING');
    await expect(stdout).not.toContainText('second part');
    await keepScreenshot(page, testInfo, 'job-running');

    // It completes: the row, the detail and the rest of the log follow.
    await expect(row).toHaveAttribute('data-state', 'COMPLETED', {
      timeout: 30_000
    });
    await expect(detail).toHaveAttribute('data-state', 'COMPLETED');
    await expect(stdout).toContainText('second part');
    await expect(detail.locator('[data-pwlab-detail="Exit code"]')).toHaveText(
      '0'
    );
    await expect(detail.locator('.jp-pwlab-log-status')).toHaveText(
      'End of log.'
    );
    // A notification says it ended.
    await expect(
      page.getByText(/Job "hello-e2e" \(#\d+ on local\) completed/).first()
    ).toBeVisible();
    await detail.locator('[data-pwlab-stream="stderr"]').click();
    await expect(detail.locator('[data-pwlab-log="stderr"]')).toContainText(
      'to stderr'
    );
    await expect(detail.locator('[data-pwlab-action="cancel"]')).toBeDisabled();
    await keepScreenshot(page, testInfo, 'job-completed');
  });

  test('cancel a running job from its detail', async ({ page }, testInfo) => {
    const id = await submitByAPI(page, {
      cluster: 'local',
      name: 'long-sleep',
      script: '#!/bin/bash\necho started\nsleep 300\n',
      resources: { time_limit_minutes: 10 }
    });
    try {
      await cancelFromDetail(page, testInfo, id);
    } finally {
      // Never leave the sleep behind, whatever failed (409: already ended).
      await page.request.delete(`/parallelworks-lab/jobs/${id}`);
    }
  });

  async function cancelFromDetail(
    page: IJupyterLabPageFixture,
    testInfo: TestInfo,
    id: string
  ): Promise<void> {
    await openSidebar(page);
    const row = jobRow(page, id);
    await expect(row).toHaveAttribute('data-state', 'RUNNING');

    // The status bar counts it.
    const status = page.locator('.jp-pwlab-status-button');
    await expect(status).toContainText('1 running');

    await row.click();
    const detail = jobDetail(page, id);
    await expect(detail.locator('[data-pwlab-log="stdout"]')).toContainText(
      'started'
    );
    await expect(detail.locator('[data-pwlab-action="hold"]')).toBeDisabled();
    await detail.locator('[data-pwlab-action="cancel"]').click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('long-sleep');
    await dialog.getByRole('button', { name: 'Cancel job' }).click();

    await expect(detail).toHaveAttribute('data-state', 'CANCELLED');
    await expect(row).toHaveAttribute('data-state', 'CANCELLED');
    await expect(detail.locator('[data-pwlab-action="cancel"]')).toBeDisabled();
    await expect(status).toBeHidden();
    await keepScreenshot(page, testInfo, 'job-cancelled');
  }

  test('insert code that gets a job into the current notebook', async ({
    page
  }) => {
    const id = await submitByAPI(page, {
      cluster: 'local',
      name: 'for-notebook',
      command: 'echo from notebook',
      resources: { time_limit_minutes: 5 }
    });
    await page.notebook.createNew('analysis.ipynb');
    await openSidebar(page);
    const row = jobRow(page, id);
    await expect(row).toHaveAttribute('data-state', 'COMPLETED');
    await row.click();
    const detail = jobDetail(page, id);
    const insert = detail.locator('[data-pwlab-action="insert-code"]');
    await expect(insert).toBeEnabled();
    await insert.click();
    await expect(
      page.locator('.jp-NotebookPanel .jp-Cell').nth(1)
    ).toContainText(`job = Client().job("${id}")`);
    await expect(
      page.locator('.jp-NotebookPanel .jp-Cell').nth(1)
    ).toContainText('from parallelworks_lab import Client');
  });

  test('the form flags values over the partition limits before submitting', async ({
    page
  }, testInfo) => {
    // From the command palette.
    await page.keyboard.press('Control+Shift+C');
    await page.locator('#modal-command-palette input').fill('New HPC Job');
    await page.keyboard.press('Enter');
    const form = await currentForm(page);

    const posts: string[] = [];
    page.on('request', request => {
      if (
        request.method() === 'POST' &&
        request.url().includes('/parallelworks-lab/jobs')
      ) {
        posts.push(request.url());
      }
    });

    const walltime = form.locator('input[name="time_limit_minutes"]');
    await walltime.fill('2:00:00');
    const walltimeError = form.locator(
      '[data-pwlab-error="resources.time_limit_minutes"]'
    );
    await expect(walltimeError).toHaveText(
      "2:00:00 (2 h) exceeds the limit of 1:00:00 (1 h) on partition 'local'"
    );
    await expect(walltime).toHaveAttribute('aria-invalid', 'true');

    await form.locator('input[name="cpus_per_task"]').fill('3');
    await expect(
      form.locator('[data-pwlab-error="resources.cpus_per_task"]')
    ).toContainText('exceeds the limit of 2');
    await form.locator('input[name="gpus"]').fill('1');
    await expect(
      form.locator('[data-pwlab-error="resources.gpus"]')
    ).toContainText("Not available on partition 'local'");
    await form
      .locator('textarea[name="script"]')
      .fill('#!/bin/bash\necho never\n');
    await keepScreenshot(page, testInfo, 'form-over-limit');

    // Submitting is refused in the browser: nothing reaches the server.
    await form.locator('[data-pwlab-submit]').click();
    await expect(form.locator('.jp-pwlab-form-invalid')).toBeVisible();
    // Focus goes to the first field in error.
    await expect(form.locator('input[name="cpus_per_task"]')).toBeFocused();
    expect(posts).toEqual([]);

    // Fixed values clear their errors; a server error lands on its field.
    await walltime.fill('90');
    await expect(walltimeError).toContainText('exceeds the limit of 1:00:00');
    await walltime.fill('30');
    await expect(walltimeError).toBeHidden();
    await form.locator('input[name="cpus_per_task"]').fill('1');
    await form.locator('input[name="gpus"]').fill('0');
    await form.locator('input[name="working_dir"]').fill('no/such/folder');
    await form.locator('[data-pwlab-submit]').click();
    await expect(
      form.locator('[data-pwlab-error="working_dir"]')
    ).toContainText('is not an existing directory');
    expect(posts).toHaveLength(1);
  });

  test('submit a file from the file browser, run in its folder', async ({
    page,
    tmpPath
  }, testInfo) => {
    await page.contents.uploadContent(
      '#!/bin/bash\necho "file job says hi"\npwd\n',
      'text',
      `${tmpPath}/proj/hello.sh`
    );
    await page.filebrowser.openDirectory(`${tmpPath}/proj`);
    await page
      .locator('.jp-DirListing-item', { hasText: 'hello.sh' })
      .click({ button: 'right' });
    await page
      .locator('.lm-Menu-item', { hasText: 'Submit to cluster…' })
      .click();

    const form = await currentForm(page);
    await expect(form.locator('input[name="working_dir"]')).toHaveValue(
      `${tmpPath}/proj`
    );
    await expect(form.locator('input[name="name"]')).toHaveValue('hello');
    await expect(form.locator('textarea[name="script"]')).toHaveValue(
      /file job says hi/
    );
    await form.locator('[data-pwlab-submit]').click();
    const success = form.locator('[data-pwlab-submitted-job]');
    await expect(success).toBeVisible();
    const id = (await success.getAttribute('data-pwlab-submitted-job'))!;
    await keepScreenshot(page, testInfo, 'file-submitted');

    await success.getByRole('button', { name: 'Show job' }).click();
    const detail = jobDetail(page, id);
    await expect(detail).toHaveAttribute('data-state', 'COMPLETED', {
      timeout: 30_000
    });
    const stdout = detail.locator('[data-pwlab-log="stdout"]');
    await expect(stdout).toContainText('file job says hi');
    await expect(stdout).toContainText(`/${tmpPath}/proj`);
    await expect(
      detail.locator('[data-pwlab-detail="Working directory"]')
    ).toHaveText(new RegExp(`/${tmpPath}/proj$`));
  });

  test('the dark theme renders the panel, the form and a job', async ({
    page
  }, testInfo) => {
    const id = await submitByAPI(page, {
      cluster: 'local',
      name: 'dark-job',
      command: 'echo dark',
      resources: { time_limit_minutes: 5 }
    });
    await page.theme.setDarkTheme();
    const sidebar = await openSidebar(page);
    await expect(jobRow(page, id)).toHaveAttribute('data-state', 'COMPLETED');
    await sidebar.locator('.jp-pwlab-new-job').click();
    const form = await currentForm(page);
    await form.locator('input[name="time_limit_minutes"]').fill('999');
    await keepScreenshot(page, testInfo, 'dark-theme');

    const look = await page.evaluate(() => {
      const luminance = (color: string): number => {
        const [r, g, b] = (color.match(/\d+(\.\d+)?/g) ?? ['0', '0', '0'])
          .slice(0, 3)
          .map(Number)
          .map(v => {
            const c = v / 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
          });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const contrast = (a: string, b: string): number => {
        const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
        return (x + 0.05) / (y + 0.05);
      };
      const style = (selector: string) =>
        getComputedStyle(document.querySelector(selector)!);
      const panel = style('#jp-pwlab-sidebar');
      const title = style('#jp-pwlab-sidebar .jp-pwlab-title');
      const badge = style('#jp-pwlab-sidebar .jp-pwlab-state-completed');
      const formStyle = style('.jp-pwlab-submit-panel');
      const label = style('.jp-pwlab-submit-panel .jp-pwlab-field-label');
      const error = style('.jp-pwlab-submit-panel .jp-pwlab-field-error');
      return {
        panelBackground: luminance(panel.backgroundColor),
        titleContrast: contrast(title.color, panel.backgroundColor),
        badgeContrast: contrast(badge.color, badge.backgroundColor),
        formBackground: luminance(formStyle.backgroundColor),
        labelContrast: contrast(label.color, formStyle.backgroundColor),
        errorContrast: contrast(error.color, formStyle.backgroundColor)
      };
    });
    console.log(`dark theme: ${JSON.stringify(look)}`);
    expect(look.panelBackground).toBeLessThan(0.1);
    expect(look.formBackground).toBeLessThan(0.1);
    expect(look.titleContrast).toBeGreaterThan(4.5);
    expect(look.labelContrast).toBeGreaterThan(4.5);
    expect(look.badgeContrast).toBeGreaterThan(2);
    expect(look.errorContrast).toBeGreaterThan(3);
  });
});
