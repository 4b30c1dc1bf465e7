import { Crumbs, type Crumb } from '../components/PageHeader';

/** Where a database entry sits: Databases › mount. */
export function DatabaseCrumbs(props: { mount?: string }) {
  const trail: Crumb[] = [['Databases', ['database']]];
  if (props.mount) trail.push([props.mount, ['database', props.mount]]);
  return <Crumbs trail={trail} />;
}
