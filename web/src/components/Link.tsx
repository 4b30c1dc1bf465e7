import type { MouseEvent, ReactNode } from 'react';
import { hrefOf, navigate } from '../router';

/** A real link (it opens in a new tab, and reads as a link to assistive technology) that routes in the page. */
export function Link(props: { to: string[]; children: ReactNode; current?: boolean }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>): void => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={hrefOf(props.to)} onClick={onClick} aria-current={props.current ? 'page' : undefined}>
      {props.children}
    </a>
  );
}
