import * as React from 'react';

import { VirtualList, visibleRange } from '../components/virtuallist';
import { keyDown, renderElement, settle } from './dom';

describe('visibleRange', () => {
  it('covers the viewport plus overscan, within the list', () => {
    expect(visibleRange(10_000, 40, 0, 400, 5)).toEqual([0, 16]);
    expect(visibleRange(10_000, 40, 4000, 400, 5)).toEqual([95, 116]);
    expect(visibleRange(10_000, 40, 400_000, 400, 5)).toEqual([9994, 10_000]);
    expect(visibleRange(0, 40, 0, 400, 5)).toEqual([0, 0]);
    expect(visibleRange(3, 40, 0, 400, 5)).toEqual([0, 3]);
  });
});

describe('VirtualList', () => {
  function List(props: { count: number; onActivate: (i: number) => void }) {
    const [active, setActive] = React.useState(-1);
    return (
      <VirtualList
        count={props.count}
        rowHeight={20}
        label="Things"
        idPrefix="thing"
        rowKey={i => String(i)}
        activeIndex={active}
        onActiveIndexChange={setActive}
        onActivate={props.onActivate}
        renderRow={(i, rowProps) => (
          <div {...rowProps} data-row={i}>
            row {i}
          </div>
        )}
      />
    );
  }

  it('renders a window of rows in a spacer as tall as the list', async () => {
    const { node, widget } = await renderElement(
      <List count={10_000} onActivate={() => undefined} />
    );
    const rows = node.querySelectorAll('[data-row]');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(50);
    const spacer = node.querySelector<HTMLElement>('.jp-pwlab-vlist-spacer')!;
    expect(spacer.style.height).toBe('200000px');
    const list = node.querySelector('[role="listbox"]')!;
    expect(list.getAttribute('aria-label')).toBe('Things');
    expect(rows[0].getAttribute('aria-setsize')).toBe('10000');
    widget.dispose();
  });

  it('moves the active row with the keyboard and activates it with Enter', async () => {
    const activated: number[] = [];
    const { node, widget } = await renderElement(
      <List count={10_000} onActivate={i => activated.push(i)} />
    );
    const list = node.querySelector<HTMLElement>('[role="listbox"]')!;
    keyDown(list, 'ArrowDown');
    await settle(widget);
    keyDown(list, 'ArrowDown');
    await settle(widget);
    expect(list.getAttribute('aria-activedescendant')).toBe('thing-1');
    keyDown(list, 'Enter');
    expect(activated).toEqual([1]);
    keyDown(list, 'End');
    await settle(widget);
    expect(list.querySelector('[data-row="9999"]')).not.toBeNull();
    expect(list.getAttribute('aria-activedescendant')).toBe('thing-9999');
    expect(
      list.querySelector('[aria-selected="true"]')!.getAttribute('data-row')
    ).toBe('9999');
    keyDown(list, 'Home');
    await settle(widget);
    expect(list.getAttribute('aria-activedescendant')).toBe('thing-0');
    widget.dispose();
  });

  it('shows the empty content without rows', async () => {
    const { node, widget } = await renderElement(
      <VirtualList
        count={0}
        rowHeight={20}
        label="Things"
        idPrefix="none"
        rowKey={String}
        activeIndex={-1}
        onActiveIndexChange={() => undefined}
        renderRow={() => <div />}
        empty={<p>Nothing here</p>}
      />
    );
    expect(node.textContent).toBe('Nothing here');
    widget.dispose();
  });
});
