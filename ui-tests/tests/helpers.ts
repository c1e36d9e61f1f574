/**
 * Steps the parallelworks-lab UI tests share.
 */
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';
import { expect, type Locator, type TestInfo } from '@playwright/test';

/**
 * The sidebar panel.
 */
export const SIDEBAR = '#jp-pwlab-sidebar';

/**
 * Open the HPC Jobs panel by clicking its tab in the left bar.
 */
export async function openSidebar(
  page: IJupyterLabPageFixture
): Promise<Locator> {
  const tab = page.locator(
    '.jp-SideBar .lm-TabBar-tab[data-id="jp-pwlab-sidebar"]'
  );
  await tab.click();
  const sidebar = page.locator(SIDEBAR);
  await expect(sidebar).toBeVisible();
  await expect(sidebar.locator('[data-cluster-id="local"]')).toBeVisible();
  return sidebar;
}

/**
 * The newest submit form, once its cluster's options have loaded.
 */
export async function currentForm(
  page: IJupyterLabPageFixture
): Promise<Locator> {
  const form = page.locator(
    '.jp-MainAreaWidget:not(.lm-mod-hidden) .jp-pwlab-form'
  );
  await expect(form).toHaveAttribute('data-pwlab-ready', 'true');
  return form;
}

/**
 * The row of a job in the sidebar's table.
 */
export function jobRow(page: IJupyterLabPageFixture, id: string): Locator {
  return page.locator(`${SIDEBAR} .jp-pwlab-job-row[data-job-id="${id}"]`);
}

/**
 * The detail panel of a job.
 */
export function jobDetail(page: IJupyterLabPageFixture, id: string): Locator {
  return page.locator(`.jp-pwlab-detail-body[data-pwlab-job-id="${id}"]`);
}

/**
 * Submit a job straight through the REST API (for tests about what comes
 * after the submit).
 */
export async function submitByAPI(
  page: IJupyterLabPageFixture,
  body: Record<string, unknown>
): Promise<string> {
  const response = await page.request.post('/parallelworks-lab/jobs', {
    data: body
  });
  expect(response.status(), await response.text()).toBe(201);
  return (await response.json()).id as string;
}

/**
 * Keep a screenshot as a test artifact (in test-results/ and the report).
 */
export async function keepScreenshot(
  page: IJupyterLabPageFixture,
  testInfo: TestInfo,
  name: string
): Promise<void> {
  const path = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path });
  await testInfo.attach(name, { path, contentType: 'image/png' });
}
