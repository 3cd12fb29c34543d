/**
 * The broker's providers: the built-ins as the contract lists them, and a providers file's
 * entries checked (an origin that is not https, or any malformed member, is a usage error:
 * exit code 2), and the `--broker PROVIDER=REF` pairs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BUILTIN_PROVIDERS,
  loadProviders,
  parseBrokers,
} from '../packages/cli/src/broker/providers.js';
import { tempDir } from './helpers/temp-dir.js';

const tmp = tempDir('agentpack-broker-providers-');
afterAll(() => tmp.remove());
let n = 0;
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
writeFileSync(join(tmp.dir, 'ca.pem'), PEM);

const GOOD = {
  origin: 'https://llm.internal:8443',
  path_prefix: '/v1',
  auth_header: 'api-key',
  auth_format: '{key}',
  base_url_env: ['LLM_BASE_URL'],
  key_env: ['LLM_API_KEY'],
  ca_file: 'ca.pem',
};

function file(providers: unknown): string {
  const path = join(tmp.dir, `p${++n}.json`);
  writeFileSync(path, typeof providers === 'string' ? providers : JSON.stringify({ providers }));
  return path;
}

/** The exit code and message of loading `providers`. */
function refusal(providers: unknown): { code: unknown; message: string } {
  try {
    loadProviders(file(providers));
  } catch (error) {
    return { code: (error as { exitCode?: unknown }).exitCode, message: (error as Error).message };
  }
  throw new Error('loaded');
}

describe('providers', () => {
  it('has the built-ins of the contract', () => {
    expect(BUILTIN_PROVIDERS['openai']).toMatchObject({
      origin: 'https://api.openai.com',
      basePath: '/v1',
      pathPrefix: '/v1',
      authHeader: 'authorization',
      authFormat: 'Bearer {key}',
      baseUrlEnv: ['OPENAI_BASE_URL'],
      keyEnv: ['OPENAI_API_KEY'],
    });
    expect(BUILTIN_PROVIDERS['anthropic']).toMatchObject({
      origin: 'https://api.anthropic.com',
      basePath: '',
      pathPrefix: '/v1',
      authHeader: 'x-api-key',
      authFormat: '{key}',
    });
    expect(BUILTIN_PROVIDERS['gemini']).toMatchObject({
      origin: 'https://generativelanguage.googleapis.com',
      basePath: '',
      pathPrefix: '/v1beta',
      authHeader: 'x-goog-api-key',
    });
  });

  it('reads a file: base_path defaults to path_prefix, ca_file from the file’s folder', () => {
    const llm = loadProviders(file({ llm: GOOD })).get('llm')!;
    expect(llm).toMatchObject({ hostname: 'llm.internal', port: 8443, basePath: '/v1' });
    expect(llm.ca?.toString()).toBe(PEM);
    expect(loadProviders(undefined).has('llm')).toBe(false);
  });

  it.each([
    ['an http origin', { origin: 'http://llm.internal' }, 'origin must be https://'],
    ['an origin with a path', { origin: 'https://llm.internal/v1' }, 'no path'],
    ['an origin with credentials', { origin: 'https://u:p@llm.internal' }, 'credentials'],
    ['a bad path_prefix', { path_prefix: 'v1' }, 'path_prefix'],
    ['a prefix with a slash at the end', { path_prefix: '/v1/' }, 'path_prefix'],
    ['a reserved auth_header', { auth_header: 'host' }, 'auth_header'],
    ['an auth_format without {key}', { auth_format: 'Bearer' }, 'auth_format'],
    ['an auth_format with a newline', { auth_format: '{key}\r\nx: y' }, 'auth_format'],
    ['no key_env', { key_env: [] }, 'key_env'],
    ['a bad env name', { base_url_env: ['lower-case'] }, 'base_url_env'],
    ['a missing ca_file', { ca_file: 'nope.pem' }, 'cannot read'],
    ['an unknown member', { upstream: 'x' }, 'unknown member'],
  ])('refuses %s (exit 2)', (_what, change, text) => {
    const { code, message } = refusal({ llm: { ...GOOD, ...change } });
    expect(code).toBe(2);
    expect(message).toContain(text);
  });

  it('refuses a built-in’s name, a bad name and a file that is not a providers object', () => {
    expect(refusal({ openai: GOOD }).message).toContain('built-in');
    expect(refusal({ 'Bad Name': GOOD }).code).toBe(2);
    expect(refusal('not json').message).toContain('not JSON');
    expect(refusal('{"providers": []}').code).toBe(2);
  });
});

describe('--broker pairs', () => {
  const providers = loadProviders(undefined);
  it('pairs known providers with refs', () => {
    const [one] = parseBrokers(['openai=agentpack.secret://a-bot/k#2'], providers);
    expect(one!.provider.name).toBe('openai');
    expect(one!.ref).toBe('agentpack.secret://a-bot/k#2');
  });
  it.each([
    [['nope=agentpack.secret://a-bot/k'], 'unknown provider'],
    [['openai'], 'PROVIDER=REF'],
    [['openai=https://example.com/k'], 'the reference must be'],
  ])('refuses %j (exit 2)', (pairs, text) => {
    expect(() => parseBrokers(pairs, providers)).toThrow(text);
  });
});
