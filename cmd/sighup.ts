/**
 * The process's one SIGHUP handler. Everything a SIGHUP should do (re-read the configuration,
 * reopen a log file) hooks in here, and the hooks run one after another in the order they
 * were added, each SIGHUP after the previous one's hooks have finished.
 * @module
 */

/** Something to do on SIGHUP. */
export type SighupHook = () => void | Promise<void>;

const _hooks: SighupHook[] = [];
let _busy: Promise<void> = Promise.resolve();
let _errors: (e: unknown) => void = () => {};

function _onSighup(): void {
  const hooks = [..._hooks];
  _busy = _busy.then(async () => {
    for (const h of hooks) {
      try {
        await h();
      } catch (e) {
        _errors(e);
      }
    }
  });
}

/** Runs `hook` on every SIGHUP until the returned function is called. */
export function onSighup(hook: SighupHook, onError?: (e: unknown) => void): () => void {
  if (onError) _errors = onError;
  if (_hooks.length === 0) Deno.addSignalListener("SIGHUP", _onSighup);
  _hooks.push(hook);
  return () => {
    const i = _hooks.indexOf(hook);
    if (i < 0) return;
    _hooks.splice(i, 1);
    if (_hooks.length === 0) Deno.removeSignalListener("SIGHUP", _onSighup);
  };
}
