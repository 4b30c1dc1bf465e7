import { Link } from '../components/Link';

/** Where a database entry sits: Databases › mount. */
export function DatabaseCrumbs(props: { mount?: string }) {
  return (
    <nav aria-label="Breadcrumb" className="crumbs">
      <ol>
        <li>
          <Link to={['database']}>Databases</Link>
        </li>
        {props.mount ? (
          <li>
            <Link to={['database', props.mount]}>{props.mount}</Link>
          </li>
        ) : null}
      </ol>
    </nav>
  );
}
