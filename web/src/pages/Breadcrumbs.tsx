import { Crumbs, type Crumb } from '../components/PageHeader';

/** Where a folder or secret sits: Secrets › mount › each folder above it. */
export function Breadcrumbs(props: { mount: string; segments: string[] }) {
  const { mount, segments } = props;
  const folders = segments.slice(0, -1).map((s, i): Crumb => [s, ['secrets', mount, ...segments.slice(0, i + 1), '']]);
  return <Crumbs trail={[['Secrets', ['secrets']], [mount, ['secrets', mount, '']], ...folders]} />;
}
