import * as React from 'react';

import {
  LOW_USE,
  usageMeasures,
  usageSourceText,
  type IUsageMeasure
} from '../guidance';
import type { IJobUsage } from '../types';

/**
 * What a finished job used against what it asked for: time, CPU, memory
 * (amounts and percentages, with small bars), GPUs, and hints for next time.
 * With `usage` null: says plainly that there are no measurements.
 */
export function EfficiencyCard(props: {
  usage: IJobUsage | null;
}): React.ReactElement {
  const { usage } = props;
  if (!usage) {
    return (
      <section
        className="jp-pwlab-efficiency"
        aria-label="What it used"
        data-pwlab-usage="none"
      >
        <h3 className="jp-pwlab-section-title">What it used</h3>
        <p className="jp-pwlab-empty">
          No measurements for this job: the scheduler did not report how much
          time, CPU or memory it used (or has not yet).
        </p>
      </section>
    );
  }
  const measures = usageMeasures(usage);
  return (
    <section
      className="jp-pwlab-efficiency"
      aria-label="What it used"
      data-pwlab-usage={usage.source}
    >
      <h3 className="jp-pwlab-section-title">What it used</h3>
      {usage.summary && (
        <p className="jp-pwlab-usage-summary">
          {usage.summary.charAt(0).toUpperCase() + usage.summary.slice(1)}
        </p>
      )}
      <dl className="jp-pwlab-usage">
        {measures.map(measure => (
          <Measure key={measure.key} measure={measure} />
        ))}
      </dl>
      {usage.hints.length > 0 && (
        <ul className="jp-pwlab-usage-hints" aria-label="Hints for next time">
          {usage.hints.map((hint, i) => (
            <li key={i}>{hint}</li>
          ))}
        </ul>
      )}
      <p className="jp-pwlab-usage-source">{usageSourceText(usage.source)}</p>
    </section>
  );
}

function Measure(props: { measure: IUsageMeasure }): React.ReactElement {
  const { key, label, text, ratio } = props.measure;
  let mod = '';
  if (ratio !== null && ratio > 1) {
    mod = ' jp-mod-over';
  } else if (ratio !== null && ratio < LOW_USE) {
    mod = ' jp-mod-low';
  }
  return (
    <>
      <dt>{label}</dt>
      <dd data-pwlab-usage-measure={key}>
        <span className="jp-pwlab-usage-text">{text}</span>
        {ratio !== null && (
          <span className={`jp-pwlab-bar${mod}`} aria-hidden="true">
            <span
              className="jp-pwlab-bar-fill"
              style={{ width: `${Math.min(100, Math.max(0, ratio * 100))}%` }}
            />
          </span>
        )}
      </dd>
    </>
  );
}
