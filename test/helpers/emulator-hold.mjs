// The script `firebase emulators:exec` runs while a test drives the emulators from outside:
// it announces that the emulators are up, then holds them up until its stdin (the test's pipe,
// inherited through the CLI) closes. A test that ends, fails or dies closes the pipe, so the
// emulators always shut down; a ceiling covers a test that hangs with the pipe open.
const maxMs = Number(process.env.AGENTPACK_E2E_HOLD_MAX_MS ?? 300_000);

const ceiling = setTimeout(() => {
  process.stderr.write(`agentpack-e2e: held the emulators for ${maxMs} ms; giving up\n`);
  process.exit(3);
}, maxMs);

const release = () => {
  clearTimeout(ceiling);
  process.exit(0);
};
process.stdin.on('data', () => {});
process.stdin.on('end', release);
process.stdin.on('close', release);
process.stdin.on('error', release);
process.stdin.resume();

process.stdout.write('agentpack-e2e: emulators ready\n');
