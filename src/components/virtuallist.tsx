import * as React from 'react';

/**
 * Props of a windowed list.
 */
export interface IVirtualListProps {
  /**
   * How many rows the list has.
   */
  count: number;
  /**
   * The height of every row, in pixels.
   */
  rowHeight: number;
  /**
   * Render row `index`; the element must carry `props.style` and `props.id`.
   */
  renderRow: (index: number, props: IRowProps) => React.ReactElement;
  /**
   * The key of row `index` (stable across re-renders).
   */
  rowKey: (index: number) => string;
  /**
   * The row that has keyboard focus, or -1.
   */
  activeIndex: number;
  onActiveIndexChange: (index: number) => void;
  /**
   * Enter or a click on a row.
   */
  onActivate?: (index: number) => void;
  /**
   * Other keys, once the list handled its own (return true when handled).
   */
  onKeyDown?: (event: React.KeyboardEvent, index: number) => boolean;
  /**
   * Rows rendered beyond the visible ones, above and below.
   */
  overscan?: number;
  /**
   * Accessible name of the list.
   */
  label: string;
  /**
   * A prefix for the DOM ids of rows.
   */
  idPrefix: string;
  className?: string;
  /**
   * Shown when there are no rows.
   */
  empty?: React.ReactNode;
}

/**
 * What a rendered row must carry.
 */
export interface IRowProps {
  id: string;
  style: React.CSSProperties;
  role: 'option';
  'aria-selected': boolean;
  'aria-setsize': number;
  'aria-posinset': number;
  onMouseDown: (event: React.MouseEvent) => void;
  onClick: (event: React.MouseEvent) => void;
}

/**
 * The rows to render for a scroll position: the visible ones plus `overscan`
 * on each side. Exported for tests.
 */
export function visibleRange(
  count: number,
  rowHeight: number,
  scrollTop: number,
  height: number,
  overscan: number
): [number, number] {
  if (count === 0 || rowHeight <= 0) {
    return [0, 0];
  }
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const visible = Math.ceil(Math.max(height, rowHeight) / rowHeight) + 1;
  const start = Math.max(0, Math.min(first, count - 1) - overscan);
  const end = Math.min(count, first + visible + overscan);
  return [start, end];
}

/**
 * A list that renders only the rows in view, so that tens of thousands of
 * rows scroll smoothly. It is one tab stop (a listbox): arrow keys, Page
 * Up/Down, Home and End move the active row, Enter activates it.
 */
export function VirtualList(props: IVirtualListProps): React.ReactElement {
  const {
    count,
    rowHeight,
    activeIndex,
    onActiveIndexChange,
    onActivate,
    overscan = 8
  } = props;
  const ref = React.useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = React.useState(0);
  const [height, setHeight] = React.useState(0);

  // Follow the viewport's height.
  React.useLayoutEffect(() => {
    const node = ref.current;
    if (!node) {
      return;
    }
    const measure = () => setHeight(node.clientHeight);
    measure();
    if (typeof ResizeObserver === 'undefined') {
      return;
    }
    const observer = new ResizeObserver(measure);
    observer.observe(node);
    return () => observer.disconnect();
  }, []);

  // Keep the scroll position inside the list when it shrinks.
  React.useLayoutEffect(() => {
    const node = ref.current;
    if (node && node.scrollTop !== scrollTop) {
      setScrollTop(node.scrollTop);
    }
  }, [count]);

  const scrollIntoView = React.useCallback(
    (index: number) => {
      const node = ref.current;
      if (!node || index < 0) {
        return;
      }
      const top = index * rowHeight;
      const viewport = node.clientHeight || rowHeight;
      if (top < node.scrollTop) {
        node.scrollTop = top;
      } else if (top + rowHeight > node.scrollTop + viewport) {
        node.scrollTop = top + rowHeight - viewport;
      }
      setScrollTop(node.scrollTop);
    },
    [rowHeight]
  );

  const onScroll = React.useCallback((event: React.UIEvent<HTMLElement>) => {
    setScrollTop(event.currentTarget.scrollTop);
  }, []);

  const onKeyDown = (event: React.KeyboardEvent) => {
    if (count === 0) {
      return;
    }
    const page = Math.max(1, Math.floor((height || rowHeight) / rowHeight) - 1);
    const current = activeIndex < 0 ? -1 : Math.min(activeIndex, count - 1);
    let next: number | null = null;
    switch (event.key) {
      case 'ArrowDown':
        next = Math.min(count - 1, current + 1);
        break;
      case 'ArrowUp':
        next = Math.max(0, current - 1);
        break;
      case 'PageDown':
        next = Math.min(count - 1, Math.max(0, current) + page);
        break;
      case 'PageUp':
        next = Math.max(0, current - page);
        break;
      case 'Home':
        next = 0;
        break;
      case 'End':
        next = count - 1;
        break;
      case 'Enter':
      case ' ':
        if (current >= 0 && onActivate) {
          event.preventDefault();
          onActivate(current);
        }
        return;
      default:
        if (props.onKeyDown?.(event, current)) {
          event.preventDefault();
        }
        return;
    }
    event.preventDefault();
    onActiveIndexChange(next);
    scrollIntoView(next);
  };

  const [start, end] = visibleRange(
    count,
    rowHeight,
    scrollTop,
    height,
    overscan
  );
  const rows: React.ReactElement[] = [];
  for (let index = start; index < end; index++) {
    const element = props.renderRow(index, {
      id: `${props.idPrefix}-${index}`,
      style: {
        position: 'absolute',
        top: index * rowHeight,
        height: rowHeight,
        left: 0,
        right: 0
      },
      role: 'option',
      'aria-selected': index === activeIndex,
      'aria-setsize': count,
      'aria-posinset': index + 1,
      // Keep focus on the list: rows are not tab stops.
      onMouseDown: event => {
        event.preventDefault();
        ref.current?.focus();
      },
      onClick: () => {
        onActiveIndexChange(index);
        onActivate?.(index);
      }
    });
    rows.push(React.cloneElement(element, { key: props.rowKey(index) }));
  }

  const active =
    activeIndex >= start && activeIndex < end
      ? `${props.idPrefix}-${activeIndex}`
      : undefined;
  return (
    <div
      ref={ref}
      className={`jp-pwlab-vlist ${props.className ?? ''}`}
      role="listbox"
      aria-label={props.label}
      aria-activedescendant={active}
      tabIndex={0}
      onScroll={onScroll}
      onKeyDown={onKeyDown}
      onFocus={() => {
        if (activeIndex < 0 && count > 0) {
          const first = Math.min(
            count - 1,
            Math.floor((ref.current?.scrollTop ?? 0) / rowHeight)
          );
          onActiveIndexChange(first);
        }
      }}
      data-pwlab-rows={count}
    >
      {count === 0 && props.empty}
      <div
        className="jp-pwlab-vlist-spacer"
        style={{ height: count * rowHeight, position: 'relative' }}
      >
        {rows}
      </div>
    </div>
  );
}
