/**
 * The real key, should an upstream ever echo it, reaches the command as the placeholder: in
 * response header values, and in streamed bodies across chunk boundaries (a tail of at most
 * key.length - 1 bytes that could start the key is held back until the next chunk shows
 * whether it does).
 */
import { Transform, type TransformCallback } from 'node:stream';

/** Replaces every `key` in a stream of chunks by `placeholder`; holds back a short tail. */
export class Redactor {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly key: Buffer,
    private readonly placeholder: Buffer,
  ) {
    if (key.length === 0) throw new Error('empty key');
  }

  /** The bytes of `chunk` that can be released now, redacted. */
  push(chunk: Buffer): Buffer {
    const data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending.fill(0);
    const out: Buffer[] = [];
    let pos = 0;
    for (let at = data.indexOf(this.key, pos); at !== -1; at = data.indexOf(this.key, pos)) {
      out.push(data.subarray(pos, at), this.placeholder);
      pos = at + this.key.length;
    }
    // A tail shorter than the key may be the start of one: keep it for the next chunk. Only
    // a tail that is a prefix of the key is kept, so a stream's chunks (SSE events end with a
    // newline, which no key starts with) go on as they come.
    let keep = Math.min(this.key.length - 1, data.length - pos);
    while (keep > 0 && !data.subarray(data.length - keep).equals(this.key.subarray(0, keep))) {
      keep -= 1;
    }
    out.push(data.subarray(pos, data.length - keep));
    this.pending = Buffer.from(data.subarray(data.length - keep));
    const result = Buffer.concat(out);
    if (data !== chunk) data.fill(0);
    return result;
  }

  /** What is still held back (it cannot be the key: too short). */
  end(): Buffer {
    const rest = Buffer.from(this.pending);
    this.pending.fill(0);
    this.pending = Buffer.alloc(0);
    return rest;
  }
}

/** A Transform stream of a {@link Redactor}; counts the bytes it lets out. */
export class RedactStream extends Transform {
  private readonly redactor: Redactor;
  bytes = 0;

  constructor(key: Buffer, placeholder: Buffer) {
    super();
    this.redactor = new Redactor(key, placeholder);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const out = this.redactor.push(chunk);
    this.bytes += out.length;
    // An empty push would still be a write: SSE keeps its pace only if each chunk goes on.
    if (out.length > 0) this.push(out);
    done();
  }

  override _flush(done: TransformCallback): void {
    const out = this.redactor.end();
    this.bytes += out.length;
    if (out.length > 0) this.push(out);
    done();
  }
}

/** A header value with the key replaced by the placeholder. */
export function redactHeader(
  value: string | string[] | undefined,
  key: string,
  placeholder: string,
): string | string[] | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((v) => v.split(key).join(placeholder));
  return value.split(key).join(placeholder);
}
