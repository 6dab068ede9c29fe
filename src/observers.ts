// Observers are metrics: a hook that throws must never undo or half-do the state change it reports,
// which has happened and must stand. Imports nothing.

type Hook = (...args: never[]) => void;

/** The observer's hooks, each wrapped so that a throw is ignored; a hook it lacks stays absent. */
export function guarded<O extends object>(observer: O | undefined, hooks: readonly (keyof O & string)[]): O {
  const safe: Record<string, unknown> = {};
  for (const name of hooks) {
    const hook = observer?.[name];
    if (typeof hook !== 'function') continue;
    safe[name] = (...args: never[]): void => {
      try {
        (hook as Hook).apply(observer, args);
      } catch {
        // Ignored on purpose: see the top of this file.
      }
    };
  }
  return safe as O;
}
