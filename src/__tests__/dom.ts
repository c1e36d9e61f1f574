import { ReactWidget } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import type * as React from 'react';

/**
 * DOM events for React components in jsdom. React handles these events
 * synchronously; await a render before reading the DOM.
 */

/**
 * Click an element the way React listens for it.
 */
export function click(element: Element): void {
  element.dispatchEvent(
    new MouseEvent('mousedown', { bubbles: true, cancelable: true })
  );
  element.dispatchEvent(
    new MouseEvent('click', { bubbles: true, cancelable: true })
  );
}

/**
 * Press a key on an element.
 */
export function keyDown(element: Element, key: string): void {
  element.dispatchEvent(
    new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true })
  );
}

/**
 * Set the value of an input, textarea or select, as typing would.
 */
export function change(
  element: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  value: string
): void {
  const proto = Object.getPrototypeOf(element);
  const setter = Object.getOwnPropertyDescriptor(proto, 'value')!.set!;
  setter.call(element, value);
  element.dispatchEvent(
    new Event(element instanceof HTMLSelectElement ? 'change' : 'input', {
      bubbles: true
    })
  );
}

/**
 * Render a React element in a ReactWidget attached to the document.
 */
export async function renderElement(
  element: React.ReactElement
): Promise<{ node: HTMLElement; widget: ReactWidget }> {
  const widget = ReactWidget.create(element);
  Widget.attach(widget, document.body);
  await settle(widget);
  return { node: widget.node, widget };
}

/**
 * Let lumino deliver pending update requests and React commit the render.
 */
export async function settle(widget?: ReactWidget): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 0));
  if (widget) {
    await widget.renderPromise;
  }
  await new Promise(resolve => setTimeout(resolve, 0));
}
