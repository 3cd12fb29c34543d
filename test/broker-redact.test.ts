/**
 * The broker's redaction of an echoed key: every split of the key across chunk boundaries, keys
 * back to back, a partial key that never completes, and a stream's chunks released as they
 * come when they cannot start the key.
 */
import { describe, expect, it } from 'vitest';
import { Redactor, RedactStream, redactHeader } from '../packages/cli/src/broker/redact.js';

const KEY = 'sk-secret-KEY-0123456789';
const PH = 'apbk_placeholder';

/** Feeds `text` to a redactor in the given pieces; the whole output. */
function run(pieces: string[]): { out: string; parts: string[] } {
  const r = new Redactor(Buffer.from(KEY), Buffer.from(PH));
  const parts = pieces.map((p) => r.push(Buffer.from(p)).toString());
  parts.push(r.end().toString());
  return { out: parts.join(''), parts };
}

describe('Redactor', () => {
  it('replaces the key whatever chunk boundary splits it', () => {
    const text = `a ${KEY} b`;
    for (let i = 0; i <= text.length; i += 1) {
      for (let j = i; j <= text.length; j += 1) {
        const { out } = run([text.slice(0, i), text.slice(i, j), text.slice(j)]);
        expect(out, `${i},${j}`).toBe(`a ${PH} b`);
      }
    }
  });

  it('replaces keys back to back and one byte at a time', () => {
    const text = `${KEY}${KEY}x${KEY}`;
    expect(run([text]).out).toBe(`${PH}${PH}x${PH}`);
    expect(run([...text]).out).toBe(`${PH}${PH}x${PH}`);
  });

  it('releases a held-back tail that never became the key', () => {
    const { out, parts } = run(['x', KEY.slice(0, 10), 'y']);
    expect(parts[1]).toBe('');
    expect(out).toBe(`x${KEY.slice(0, 10)}y`);
    expect(run([KEY.slice(0, -1)]).out).toBe(KEY.slice(0, -1));
  });

  it('releases a chunk at once when its tail cannot start the key (SSE events)', () => {
    const { parts } = run(['data: one\n\n', 'data: two\n\n']);
    expect(parts).toEqual(['data: one\n\n', 'data: two\n\n', '']);
  });

  it('works as a stream', async () => {
    const stream = new RedactStream(Buffer.from(KEY), Buffer.from(PH));
    const chunks: string[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c.toString()));
    const ended = new Promise((resolve) => stream.on('end', resolve));
    stream.write(`<${KEY.slice(0, 5)}`);
    stream.end(`${KEY.slice(5)}>`);
    await ended;
    expect(chunks.join('')).toBe(`<${PH}>`);
    expect(stream.bytes).toBe(`<${PH}>`.length);
  });
});

describe('redactHeader', () => {
  it('replaces the key in a value and in each of a list', () => {
    expect(redactHeader(`k=${KEY}; ${KEY}`, KEY, PH)).toBe(`k=${PH}; ${PH}`);
    expect(redactHeader(['a', `b${KEY}`], KEY, PH)).toEqual(['a', `b${PH}`]);
    expect(redactHeader(undefined, KEY, PH)).toBeUndefined();
  });
});
