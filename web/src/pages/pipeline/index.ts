// The multi-cluster pipeline's pages (deliveries, clusters, placements, the lifecycle map) and their style sheet.
import '../../pipeline.css';

export { ClusterView } from './ClusterView';
export { Clusters } from './Clusters';
export { Deliveries } from './Deliveries';
export { DeliveryPages } from './DeliveryPages';
export { DeliveryEditor } from './DeliveryEditor';
export { LifecycleMap } from './LifecycleMap';
export { PlacementEditor } from './PlacementEditor';
export { Placements } from './Placements';
