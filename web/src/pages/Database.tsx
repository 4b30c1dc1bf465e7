import { DatabaseConnection } from './DatabaseConnection';
import { DatabaseMount } from './DatabaseMount';
import { DatabaseMounts } from './DatabaseMounts';
import { DatabaseRole } from './DatabaseRole';
import { DatabaseStaticRole } from './DatabaseStaticRole';
import '../ops.css';

/**
 * The database section: database/ (the mounts), database/<mount> (its connections and roles),
 * database/<mount>/connections/<name>, database/<mount>/roles/<name>, database/<mount>/static-roles/<name>.
 */
export function Database(props: { route: string[] }) {
  const [mount, kind, name] = props.route;
  if (!mount) return <DatabaseMounts />;
  const key = props.route.join('/');
  if (name && kind === 'connections') return <DatabaseConnection key={key} mount={mount} name={name} />;
  if (name && kind === 'roles') return <DatabaseRole key={key} mount={mount} name={name} />;
  if (name && kind === 'static-roles') return <DatabaseStaticRole key={key} mount={mount} name={name} />;
  return <DatabaseMount key={mount} mount={mount} />;
}
