/** Vault's wire types: what the API answers, as Vault's Go client (api.Secret, api.SecretAuth) names them. */

export interface SecretAuth {
  client_token: string;
  accessor: string;
  policies?: string[] | null;
  token_policies?: string[] | null;
  identity_policies?: string[] | null;
  metadata?: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  [key: string]: unknown;
}

/** The Vault response envelope. */
export interface Secret {
  request_id?: string;
  lease_id?: string;
  lease_duration?: number;
  renewable?: boolean;
  data?: Record<string, unknown> | null;
  auth?: SecretAuth | null;
  warnings?: string[] | null;
  wrap_info?: unknown;
  [key: string]: unknown;
}
