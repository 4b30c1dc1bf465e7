import { Link } from '../components/Link';

/** Where a folder or secret sits: Secrets › mount › each folder above it. */
export function Breadcrumbs(props: { mount: string; segments: string[] }) {
  const { mount, segments } = props;
  return (
    <nav aria-label="Breadcrumb" className="crumbs">
      <ol>
        <li>
          <Link to={['secrets']}>Secrets</Link>
        </li>
        <li>
          <Link to={['secrets', mount, '']}>{mount}</Link>
        </li>
        {segments.slice(0, -1).map((s, i) => (
          <li key={i}>
            <Link to={['secrets', mount, ...segments.slice(0, i + 1), '']}>{s}</Link>
          </li>
        ))}
      </ol>
    </nav>
  );
}
