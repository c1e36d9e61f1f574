/**
 * Going back to the notebook cell a job was submitted from.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { Widget } from '@lumino/widgets';

/**
 * Whether a widget the document manager opened is a notebook panel.
 */
export function isNotebookPanel(
  widget: Widget | undefined | null
): widget is NotebookPanel {
  const content = (widget as NotebookPanel | undefined)?.content;
  return (
    !!content &&
    Array.isArray(content.widgets) &&
    typeof content.scrollToCell === 'function'
  );
}

/**
 * Make the cell with this id the active cell of the notebook and scroll to it.
 *
 * @returns false when the notebook has no cell with this id (any more)
 */
export async function revealCell(
  panel: NotebookPanel,
  cellId: string
): Promise<boolean> {
  await panel.context.ready;
  const notebook = panel.content;
  const index = notebook.widgets.findIndex(cell => cell.model.id === cellId);
  if (index < 0) {
    return false;
  }
  notebook.activeCellIndex = index;
  notebook.mode = 'command';
  await notebook.scrollToCell(notebook.widgets[index], 'center');
  return true;
}
