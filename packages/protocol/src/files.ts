/**
 * The files the CLI keeps on a device or a worker host, and the environment `run exec` gives a
 * command: named once, so the commands that write them and those that read them agree.
 */

/** The files of a device directory (`device keygen --out DIR`, `--keys DIR`). */
export const DEVICE_FILES = {
  sealingKey: 'sealing.key',
  signingKey: 'signing.key',
  publicKeys: 'device.json',
  deviceKey: 'device-key',
  enrollment: 'enrollment.json',
} as const;

/** The files of a run directory (`run spawn --out DIR`, `--run-dir DIR`, `--parent-dir DIR`). */
export const RUN_FILES = { key: 'run.key', info: 'run.json' } as const;

/** The environment `run exec` gives the command: paths and the public run id, never a value. */
export const EXEC_ENV = {
  secretsDir: 'AGENTPACK_SECRETS_DIR',
  runId: 'AGENTPACK_RUN_ID',
  runDir: 'AGENTPACK_RUN_DIR',
} as const;
