import type { ReactNode } from 'react';
import { Link } from './Link';

/** One step of a breadcrumb trail: its label and the route it links to. */
export type Crumb = [label: string, to: string[]];

/** Where a page sits: a trail of links to the pages above it. */
export function Crumbs(props: { trail: Crumb[] }) {
  return (
    <nav aria-label="Breadcrumb" className="crumbs">
      <ol>
        {props.trail.map(([label, to], i) => (
          <li key={i}>
            <Link to={to}>{label}</Link>
          </li>
        ))}
      </ol>
    </nav>
  );
}

/** A page's trail and its title; the title takes the focus when the page is navigated to (see App). */
export function PageHeader(props: { trail: Crumb[]; title: ReactNode }) {
  return (
    <>
      <Crumbs trail={props.trail} />
      <h1 id="page-title" tabIndex={-1}>
        {props.title}
      </h1>
    </>
  );
}
