/**
 * The notebook widgets in a real notebook: `ResourceForm` renders from the
 * local cluster's options schema, is filled in and submitted in the page, and
 * `JobMonitor` follows the job it made to COMPLETED. The kernel finds the
 * server that started it by itself (`Client()` via `JPY_PARENT_PID`).
 */
import { expect, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';

import { jobRow, keepScreenshot, openSidebar } from './helpers';

/**
 * The control in the row of a ResourceForm field, found by the row's label.
 */
function formControl(form: Locator, label: string, control: string): Locator {
  return form
    .locator(`.widget-hbox:has(> .widget-label:text-is("${label}"))`)
    .locator(control);
}

test.describe('Notebook widgets', () => {
  test('submit from a ResourceForm and follow the job with a JobMonitor', async ({
    page
  }, testInfo) => {
    await page.notebook.createNew('widgets.ipynb');
    await page.notebook.setCell(
      0,
      'code',
      'from parallelworks_lab import JobMonitor, ResourceForm\n' +
        'form = ResourceForm(cluster="local")\n' +
        'form'
    );
    await page.notebook.runCell(0, { inplace: true });

    // The form, built from the cluster's options schema.
    const form = (await page.notebook.getCellOutputLocator(0))!.locator(
      '.jp-pwlab-resource-form'
    );
    await expect(form).toBeVisible();
    const submit = form.locator('button.widget-button', { hasText: 'Submit' });
    // Empty command: the form refuses to submit.
    await expect(submit).toBeDisabled();

    await formControl(form, 'Job name', 'input').fill('widget-e2e');
    await formControl(form, 'Time limit', 'input').fill('0:05:00');
    await formControl(form, 'Command', 'textarea').fill('echo from-widget');
    await expect(submit).toBeEnabled();
    await keepScreenshot(page, testInfo, 'widget-form-filled');
    await submit.click();

    const submitted = form
      .locator('.widget-html-content', { hasText: 'Submitted' })
      .locator('code');
    await expect(submitted).toHaveText(/^[0-9a-f]+$/);
    const id = (await submitted.textContent())!;

    // The job the form made, in a monitor of its own.
    await page.notebook.addCell(
      'code',
      'job = form.job\nprint(job.id, job.name)\nJobMonitor(job)'
    );
    await page.notebook.runCell(1, { inplace: true });
    const output = (await page.notebook.getCellOutputLocator(1))!;
    await expect(output).toContainText(`${id} widget-e2e`);
    const monitor = output.locator('.jp-pwlab-job-monitor');
    await expect(monitor).toBeVisible();
    await expect(monitor).toContainText(id);
    await expect(monitor.locator('.jp-pwlab-state')).toHaveText('COMPLETED', {
      timeout: 30_000
    });
    await expect(monitor).toContainText('exit code 0');
    await expect(monitor.locator('.jp-pwlab-log')).toContainText('from-widget');
    await expect(
      monitor.locator('button.widget-button', { hasText: 'Cancel' })
    ).toBeDisabled();

    // Submitted from the kernel, it shows in the sidebar like any other job.
    await openSidebar(page);
    const row = jobRow(page, id);
    await expect(row).toHaveAttribute('data-state', 'COMPLETED');
    await expect(row).toContainText('widget-e2e');
    await monitor.scrollIntoViewIfNeeded();
    await keepScreenshot(page, testInfo, 'widget-job-completed');
  });
});
