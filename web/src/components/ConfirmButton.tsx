import { useRef, useState, type ReactNode } from 'react';

/**
 * A button for a destructive action: it opens a modal dialog (the browser's <dialog>, which keeps focus inside and
 * closes on Escape) that says what will happen, and runs the action only on an explicit confirmation.
 */
export function ConfirmButton(props: {
  label: string;
  /** What the action will do, in a sentence the user can check. */
  consequence: ReactNode;
  confirmLabel: string;
  onConfirm: () => Promise<void> | void;
  danger?: boolean;
  disabled?: boolean;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const confirm = async (): Promise<void> => {
    setBusy(true);
    try {
      dialog.current?.close();
      await props.onConfirm();
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        className={props.danger ? 'danger' : undefined}
        disabled={props.disabled === true || busy}
        onClick={() => dialog.current?.showModal()}
      >
        {props.label}
      </button>
      <dialog ref={dialog} aria-label={`Confirm: ${props.label}`}>
        <p>{props.consequence}</p>
        <div className="actions">
          <button type="button" autoFocus onClick={() => dialog.current?.close()}>
            Cancel
          </button>
          <button type="button" className={props.danger ? 'danger' : 'primary'} onClick={() => void confirm()}>
            {props.confirmLabel}
          </button>
        </div>
      </dialog>
    </>
  );
}
