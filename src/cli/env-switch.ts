/**
 * A switch set in the server's environment (COFRE_GC_FLAGS, COFRE_FORWARD_WRITES): on, off, or unset (the
 * default). Anything else is refused at start: a "false" or "0" meant as off must not leave the switch on unnoticed.
 */
export function envSwitch(name: string, env: NodeJS.ProcessEnv = process.env): 'on' | 'off' | undefined {
  const setting = env[name] ?? '';
  if (setting === '') return undefined;
  if (setting === 'on' || setting === 'off') return setting;
  throw new Error(`${name} is on or off (not ${JSON.stringify(setting.slice(0, 40))})`);
}
