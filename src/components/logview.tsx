import * as React from 'react';

import type { LogFollower } from '../logs';
import type { LogStream } from '../types';

/**
 * Props of the log view.
 */
export interface ILogViewProps {
  /**
   * The follower of each stream.
   */
  followers: Record<LogStream, LogFollower>;
  stream: LogStream;
  onStreamChange: (stream: LogStream) => void;
  /**
   * Whether the job may still write (it has not ended).
   */
  live: boolean;
  /**
   * Whether the job has not started yet.
   */
  waiting: boolean;
  idPrefix: string;
}

const STREAMS: LogStream[] = ['stdout', 'stderr'];

/**
 * A job's output: stdout and stderr tabs, the text appended as it comes, and
 * "follow" keeping the end in view while the job runs.
 */
export function LogView(props: ILogViewProps): React.ReactElement {
  const { followers, stream, idPrefix } = props;
  const follower = followers[stream];
  const [follow, setFollow] = React.useState(true);
  const tabs = React.useRef<(HTMLButtonElement | null)[]>([]);

  const onTabKey = (event: React.KeyboardEvent, index: number) => {
    let next: number | null = null;
    if (event.key === 'ArrowRight') {
      next = (index + 1) % STREAMS.length;
    } else if (event.key === 'ArrowLeft') {
      next = (index + STREAMS.length - 1) % STREAMS.length;
    }
    if (next !== null) {
      event.preventDefault();
      props.onStreamChange(STREAMS[next]);
      tabs.current[next]?.focus();
    }
  };

  let status: string;
  if (follower.error) {
    status = `Cannot read the log: ${follower.error}`;
  } else if (props.waiting) {
    status = 'The job has not started yet.';
  } else if (follower.eof) {
    status = follower.text ? 'End of log.' : 'The log is empty.';
  } else {
    status = props.live ? 'Following…' : 'Reading…';
  }

  return (
    <div className="jp-pwlab-log">
      <div className="jp-pwlab-log-bar">
        <div role="tablist" aria-label="Output stream">
          {STREAMS.map((name, index) => (
            <button
              key={name}
              ref={element => {
                tabs.current[index] = element;
              }}
              role="tab"
              id={`${idPrefix}-tab-${name}`}
              className={`jp-pwlab-log-tab${name === stream ? ' jp-mod-current' : ''}`}
              aria-selected={name === stream}
              aria-controls={`${idPrefix}-panel`}
              tabIndex={name === stream ? 0 : -1}
              data-pwlab-stream={name}
              onClick={() => props.onStreamChange(name)}
              onKeyDown={event => onTabKey(event, index)}
            >
              {name}
            </button>
          ))}
        </div>
        <label className="jp-pwlab-log-follow">
          <input
            type="checkbox"
            checked={follow}
            onChange={e => setFollow(e.target.checked)}
          />{' '}
          Follow
        </label>
        <span className="jp-pwlab-log-status" aria-live="polite">
          {status}
        </span>
      </div>
      {follower.truncated && (
        <div className="jp-pwlab-log-truncated">
          Showing the end of a long log.
        </div>
      )}
      <LogText
        id={`${idPrefix}-panel`}
        labelledBy={`${idPrefix}-tab-${stream}`}
        follower={follower}
        follow={follow}
      />
    </div>
  );
}

/**
 * The text of one stream. Only the new text is appended to the DOM on each
 * read; the whole text is redrawn only when the stream or its head changes.
 */
function LogText(props: {
  id: string;
  labelledBy: string;
  follower: LogFollower;
  follow: boolean;
}): React.ReactElement {
  const { follower, follow } = props;
  const ref = React.useRef<HTMLPreElement>(null);
  const drawn = React.useRef({
    follower: null as LogFollower | null,
    generation: -1,
    length: 0
  });

  React.useLayoutEffect(() => {
    const pre = ref.current;
    if (!pre) {
      return;
    }
    const state = drawn.current;
    const text = follower.text;
    if (
      state.follower !== follower ||
      state.generation !== follower.generation ||
      text.length < state.length
    ) {
      pre.textContent = text;
    } else if (text.length > state.length) {
      pre.appendChild(document.createTextNode(text.slice(state.length)));
    }
    drawn.current = {
      follower,
      generation: follower.generation,
      length: text.length
    };
    if (follow) {
      pre.scrollTop = pre.scrollHeight;
    }
  });

  return (
    <pre
      ref={ref}
      id={props.id}
      className="jp-pwlab-log-text"
      role="tabpanel"
      aria-labelledby={props.labelledBy}
      tabIndex={0}
      data-pwlab-log={follower.stream}
    />
  );
}
