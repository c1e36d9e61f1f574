import {
  describeMinutes,
  formatMemory,
  formatWalltime,
  parseMemory,
  parseWalltime
} from '../units';

describe('parseWalltime', () => {
  it.each([
    ['90', 90],
    ['1:30:00', 90],
    ['2-00:00:00', 2880],
    ['0:05:00', 5],
    [' 45 ', 45],
    ['1-12', 2160],
    ['1-2:30', 1590],
    ['10:30', 11], // minutes:seconds, rounded up like Slurm
    ['0:00:01', 1]
  ])('reads %j as %d minutes', (text, minutes) => {
    expect(parseWalltime(text)).toEqual({ ok: true, value: minutes });
  });

  it.each(['', 'abc', '1:2:3:4', '-5', '1.5', '2-', '1h'])(
    'refuses %j with the accepted forms',
    text => {
      const result = parseWalltime(text);
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.error).toContain('1:30:00');
        expect(result.error).toContain('2-00:00:00');
      }
    }
  );

  it('refuses zero', () => {
    expect(parseWalltime('0')).toEqual({
      ok: false,
      error: 'Must be at least 1 minute'
    });
  });
});

describe('formatWalltime and describeMinutes', () => {
  it('writes minutes back as Slurm walltimes', () => {
    expect(formatWalltime(5)).toBe('0:05:00');
    expect(formatWalltime(90)).toBe('1:30:00');
    expect(formatWalltime(2880)).toBe('2-00:00:00');
    expect(formatWalltime(1590)).toBe('1-02:30:00');
  });

  it('round-trips through parseWalltime', () => {
    for (const minutes of [1, 59, 60, 61, 1439, 1440, 10081]) {
      expect(parseWalltime(formatWalltime(minutes))).toEqual({
        ok: true,
        value: minutes
      });
    }
  });

  it('describes minutes in words', () => {
    expect(describeMinutes(45)).toBe('45 min');
    expect(describeMinutes(90)).toBe('1 h 30 min');
    expect(describeMinutes(60)).toBe('1 h');
    expect(describeMinutes(2880)).toBe('2 d');
    expect(describeMinutes(0)).toBe('0 min');
  });
});

describe('memory', () => {
  it.each([
    ['4096', 4096],
    ['4G', 4096],
    ['4gb', 4096],
    ['1.5GiB', 1536],
    ['512M', 512],
    ['2T', 2 * 1024 * 1024],
    ['1024K', 1]
  ])('reads %j as %d MiB', (text, mib) => {
    expect(parseMemory(text)).toEqual({ ok: true, value: mib });
  });

  it('refuses what is not a size', () => {
    expect(parseMemory('lots').ok).toBe(false);
    expect(parseMemory('4X').ok).toBe(false);
    expect(parseMemory('0').ok).toBe(false);
  });

  it('formats sizes', () => {
    expect(formatMemory(512)).toBe('512 MiB');
    expect(formatMemory(4096)).toBe('4 GiB');
    expect(formatMemory(24105)).toBe('23.5 GiB');
    expect(formatMemory(2 * 1024 * 1024)).toBe('2 TiB');
  });
});
