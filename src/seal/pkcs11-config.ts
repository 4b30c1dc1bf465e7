import type { Pkcs11DeviceConfig } from './pkcs11-device.js';

/** CKM_AES_GCM, the one mechanism the seal uses; Vault's config names mechanisms by number. */
const CKM_AES_GCM = 0x1087;

export interface Pkcs11SealConfig extends Pkcs11DeviceConfig {
  /** `disabled = true`: the old seal of a migration away from PKCS#11, used only to unwrap. */
  disabled: boolean;
}

const text = (body: Record<string, unknown>, key: string): string | undefined => {
  const v = body[key];
  return v === undefined || v === null || v === '' ? undefined : String(v);
};

const bool = (value: unknown): boolean => value === true || value === 'true' || value === 1 || value === '1';

/**
 * seal "pkcs11" { lib, slot or token_label, pin, key_label, mechanism, generate_key, disabled }. The PIN may come
 * from COFRE_HSM_PIN (or Vault's VAULT_HSM_PIN) instead, which wins over the file, to keep it out of the file.
 * Messages name the setting that is wrong, never the PIN's value.
 */
export function parsePkcs11Seal(
  file: string,
  body: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Pkcs11SealConfig {
  const where = `${file}: seal "pkcs11"`;
  const known = ['lib', 'slot', 'token_label', 'pin', 'key_label', 'mechanism', 'generate_key', 'disabled'];
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new Error(`${where}: unknown settings ${unknown.join(', ')} (known: ${known.join(', ')})`);
  const lib = text(body, 'lib');
  if (!lib)
    throw new Error(`${where} needs lib, the path of the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so)`);
  const slotText = text(body, 'slot');
  const tokenLabel = text(body, 'token_label');
  if ((slotText === undefined) === (tokenLabel === undefined)) {
    throw new Error(`${where} needs exactly one of slot and token_label`);
  }
  let slot: number | undefined;
  if (slotText !== undefined) {
    slot = /^0x[0-9a-f]+$/i.test(slotText) ? Number.parseInt(slotText.slice(2), 16) : Number(slotText);
    if (!Number.isSafeInteger(slot) || slot < 0) throw new Error(`${where}: slot must be a slot ID (a number)`);
  }
  const pin = env.COFRE_HSM_PIN ?? env.VAULT_HSM_PIN ?? text(body, 'pin');
  if (!pin) throw new Error(`${where} needs pin (or COFRE_HSM_PIN in the environment)`);
  const keyLabel = text(body, 'key_label');
  if (!keyLabel) throw new Error(`${where} needs key_label, the label of the AES key in the HSM`);
  const mechanism = text(body, 'mechanism');
  if (mechanism !== undefined) {
    const number = /^0x[0-9a-f]+$/i.test(mechanism) ? Number.parseInt(mechanism.slice(2), 16) : Number(mechanism);
    if (mechanism !== 'CKM_AES_GCM' && number !== CKM_AES_GCM) {
      throw new Error(`${where}: mechanism "${mechanism}" is not supported; the seal uses CKM_AES_GCM (0x1087)`);
    }
  }
  return {
    lib,
    ...(slot !== undefined ? { slot } : {}),
    ...(tokenLabel !== undefined ? { tokenLabel } : {}),
    pin,
    keyLabel,
    generateKey: bool(body.generate_key),
    disabled: bool(body.disabled),
  };
}
