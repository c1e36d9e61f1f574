/**
 * Parsing and formatting of walltimes and memory sizes as people type them.
 * Pure functions: no DOM, no server.
 */

/**
 * The result of parsing a value typed into the form.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * How to write a walltime, for error messages and placeholders.
 */
export const WALLTIME_HINT =
  'minutes (90), H:MM:SS (1:30:00) or D-HH:MM:SS (2-00:00:00)';

/**
 * Parse a walltime the way Slurm's `--time` reads it, into whole minutes
 * (rounded up, as Slurm does).
 *
 * Accepted: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`, e.g. `90`,
 * `1:30:00`, `2-00:00:00`, `1-12`.
 */
export function parseWalltime(text: string): Parsed<number> {
  const value = text.trim();
  const invalid: Parsed<number> = {
    ok: false,
    error: `Use ${WALLTIME_HINT}`
  };
  const match = /^(?:(\d+)-)?(\d+(?::\d+){0,2})$/.exec(value);
  if (!match) {
    return invalid;
  }
  const days = match[1] === undefined ? null : Number(match[1]);
  const parts = match[2].split(':').map(Number);
  let seconds: number;
  if (days === null) {
    if (parts.length === 1) {
      seconds = parts[0] * 60;
    } else if (parts.length === 2) {
      seconds = parts[0] * 60 + parts[1];
    } else {
      seconds = parts[0] * 3600 + parts[1] * 60 + parts[2];
    }
  } else {
    const [hours, minutes = 0, secs = 0] = parts;
    seconds = days * 86400 + hours * 3600 + minutes * 60 + secs;
  }
  const minutes = Math.ceil(seconds / 60);
  if (!Number.isSafeInteger(minutes)) {
    return invalid;
  }
  if (minutes < 1) {
    return { ok: false, error: 'Must be at least 1 minute' };
  }
  return { ok: true, value: minutes };
}

/**
 * Minutes as a Slurm walltime: `H:MM:00`, or `D-HH:MM:00` from one day on.
 */
export function formatWalltime(minutes: number): string {
  const total = Math.max(0, Math.round(minutes));
  const days = Math.floor(total / 1440);
  const hours = Math.floor((total % 1440) / 60);
  const mins = total % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (days > 0) {
    return `${days}-${pad(hours)}:${pad(mins)}:00`;
  }
  return `${hours}:${pad(mins)}:00`;
}

/**
 * Minutes in words: `45 min`, `1 h 30 min`, `2 d`, `1 d 4 h`.
 */
export function describeMinutes(minutes: number): string {
  const total = Math.max(0, Math.round(minutes));
  const days = Math.floor(total / 1440);
  const hours = Math.floor((total % 1440) / 60);
  const mins = total % 60;
  const parts: string[] = [];
  if (days) {
    parts.push(`${days} d`);
  }
  if (hours) {
    parts.push(`${hours} h`);
  }
  if (mins || parts.length === 0) {
    parts.push(`${mins} min`);
  }
  return parts.join(' ');
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  K: 1 / 1024,
  M: 1,
  G: 1024,
  T: 1024 * 1024
};

/**
 * How to write a memory size, for error messages and placeholders.
 */
export const MEMORY_HINT = 'MiB (4096) or a size with a unit (4G, 512M)';

/**
 * Parse a memory size into MiB (rounded up). A bare number is MiB, like
 * Slurm's `--mem`; `K`, `M`, `G`, `T` (optionally followed by `B`, `iB`)
 * are binary units.
 */
export function parseMemory(text: string): Parsed<number> {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) {
    return { ok: false, error: `Use ${MEMORY_HINT}` };
  }
  const mib = Math.ceil(
    Number(match[1]) * MEMORY_UNITS[match[2].toUpperCase()]
  );
  if (!Number.isSafeInteger(mib)) {
    return { ok: false, error: `Use ${MEMORY_HINT}` };
  }
  if (mib < 1) {
    return { ok: false, error: 'Must be at least 1 MiB' };
  }
  return { ok: true, value: mib };
}

/**
 * MiB as a short size: `512 MiB`, `4 GiB`, `23.5 GiB`, `2 TiB`.
 */
export function formatMemory(mib: number): string {
  const trim = (n: number) => String(Math.round(n * 10) / 10);
  if (mib >= 1024 * 1024) {
    return `${trim(mib / (1024 * 1024))} TiB`;
  }
  if (mib >= 1024) {
    return `${trim(mib / 1024)} GiB`;
  }
  return `${Math.round(mib)} MiB`;
}
