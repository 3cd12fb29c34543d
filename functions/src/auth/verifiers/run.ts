/**
 * A run (`x-agentpack-run: <run_id>`) plus a request signed by the run's own key, always
 * required: a run id alone proves nothing. The run must be live as `runStatus` decides it: every
 * ancestor, the key that spawned its tree and its agent (enabled) included.
 */
import { RUN_ID_PATTERN } from '@agentpack-identity/protocol';
import type { RunPrincipal } from '../../core/principal.js';
import { runStatus } from '../../core/runs.js';
import { checkSignedRequest } from '../../core/signed-requests.js';
import { refused, signatureHeaders, type CredentialVerifier } from '../verifier.js';

export const verifyRun: CredentialVerifier<RunPrincipal> = async (deps, request, value) => {
  if (!RUN_ID_PATTERN.test(value)) return refused('malformed');
  const doc = await deps.store.get('runs', value);
  if (doc === null) return refused('unknown');
  const status = await runStatus(deps.store, doc, deps.clock.now());
  if (status !== 'active') return refused(status);
  const parts = signatureHeaders(request);
  if (typeof parts === 'object' && 'refusal' in parts) return { ok: false, refusal: parts.refusal };
  if (parts === 'none' || parts === 'partial') return refused('signature_required');
  const refusal = await checkSignedRequest(
    deps,
    { key_id: doc.run_id, signing_public_key: doc.public_key },
    request,
    parts,
  );
  if (refusal !== null) return refused(refusal);
  return {
    ok: true,
    principal: {
      kind: 'run',
      agent_id: doc.agent_id,
      run_id: doc.run_id,
      root_run_id: doc.root_run_id,
      lineage: doc.lineage,
      scope: doc.scope,
      expires_at: doc.expires_at,
    },
  };
};
