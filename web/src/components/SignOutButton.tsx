import { useRef, useState } from 'react';
import { call } from '../api';
import { currentToken, signOut, tokenOrigin } from '../session';

/**
 * Sign out revokes the token (auth/token/revoke-self) and then forgets it, so a copy left in the tab's history,
 * a crash dump or a shoulder-surfed screen is worth nothing. A token this tab got from a login is revoked at once.
 * A token the user pasted may be in use elsewhere (the CLI, a script), so the user is asked first: revoke it, or
 * only forget it here.
 */
export function SignOutButton(props: { onSignedOut: (notice: string) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);

  const finish = async (revoke: boolean): Promise<void> => {
    dialog.current?.close();
    setBusy(true);
    let notice = 'Signed out. The token was only forgotten in this tab: it stays valid until it expires.';
    if (revoke && currentToken()) {
      try {
        await call('POST', 'auth/token/revoke-self');
        notice = 'Signed out. The token is revoked: it no longer works anywhere.';
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        notice = `Signed out, but the server did not revoke the token (${why}): it stays valid until it expires.`;
      }
    }
    signOut();
    setBusy(false);
    props.onSignedOut(notice);
  };

  return (
    <>
      <button
        type="button"
        disabled={busy}
        onClick={() => (tokenOrigin() === 'login' ? void finish(true) : dialog.current?.showModal())}
      >
        Sign out
      </button>
      <dialog ref={dialog} aria-label="Confirm: Sign out">
        <p>
          Signing out revokes the token you signed in with: it, and every token and lease made from it, stop working
          everywhere, also outside this browser. If you use it elsewhere, only forget it here instead.
        </p>
        <div className="actions">
          <button type="button" autoFocus onClick={() => dialog.current?.close()}>
            Cancel
          </button>
          <button type="button" onClick={() => void finish(false)}>
            Only forget it here
          </button>
          <button type="button" className="danger" onClick={() => void finish(true)}>
            Revoke the token and sign out
          </button>
        </div>
      </dialog>
    </>
  );
}
