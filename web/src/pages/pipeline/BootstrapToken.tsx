import { useEffect, useRef, useState } from 'react';

/**
 * A cluster's bootstrap token, shown once: it lives only in this component's state (never in a URL or storage) and
 * is gone when the user dismisses it or leaves the page. The server keeps only its hash, so it cannot be shown again.
 */
export function BootstrapToken(props: { cluster: string; token: string; ttl: number; onDone: () => void }) {
  const [copied, setCopied] = useState('');
  const heading = useRef<HTMLHeadingElement>(null);
  // The token is what the user came for: focus moves to it, so a screen reader reads the warning first.
  useEffect(() => heading.current?.focus(), []);
  const origin = window.location.origin;
  const commands = [
    'kubectl create namespace cofre-agent',
    `kubectl -n cofre-agent create secret generic cofre-cluster-agent-bootstrap --from-literal=token=${props.token}`,
    'helm install cofre-agent charts/cofre -n cofre-agent \\',
    '  --set server.enabled=false,operator.enabled=false,clusterAgent.enabled=true \\',
    `  --set clusterAgent.cofreAddress=${origin}`,
  ].join('\n');
  const copy = async (text: string, what: string): Promise<void> => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(`${what} copied.`);
    } catch {
      setCopied('The browser did not allow copying: select the text instead.');
    }
  };
  return (
    <section className="notice once" aria-labelledby="bootstrap-title">
      <h2 id="bootstrap-title" ref={heading} tabIndex={-1}>
        Bootstrap token for {props.cluster}
      </h2>
      <p>
        <strong>Shown once.</strong> Copy it now: Cofre keeps only its hash and cannot show it again. It enrols one
        agent, once, within {Math.round(props.ttl / 60)} minutes; anyone holding it until then can enrol as this
        cluster.
      </p>
      <label>
        Bootstrap token
        <input readOnly value={props.token} className="mono" onFocus={(e) => e.target.select()} />
      </label>
      <p>In the cluster, with kubectl and Helm (or run the agent with COFRE_BOOTSTRAP_TOKEN set):</p>
      <pre className="commands" aria-label="Commands to install the agent">
        {commands}
      </pre>
      <div className="actions">
        <button type="button" onClick={() => void copy(props.token, 'The token was')}>
          Copy the token
        </button>
        <button type="button" onClick={() => void copy(commands, 'The commands were')}>
          Copy the commands
        </button>
        <button type="button" className="primary" onClick={props.onDone}>
          I have copied it: hide the token
        </button>
      </div>
      <p role="status" className="status">
        {copied}
      </p>
    </section>
  );
}
