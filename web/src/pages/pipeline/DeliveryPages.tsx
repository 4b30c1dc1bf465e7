import { DeliveryEditor } from './DeliveryEditor';
import { Deliveries } from './Deliveries';
import { LifecycleMap } from './LifecycleMap';

/** deliveries (the list), deliveries/<name> (the editor) and deliveries/<name>/map (its lifecycle map). */
export function DeliveryPages(props: { rest: string[] }) {
  const [name, view] = props.rest;
  if (!name) return <Deliveries />;
  if (view === 'map') return <LifecycleMap key={name} delivery={name} />;
  return <DeliveryEditor key={name} name={name} />;
}
