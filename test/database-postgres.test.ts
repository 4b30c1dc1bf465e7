import { postgres } from './database-flavors.js';
import { describeDatabaseEngine } from './database-suite.js';

describeDatabaseEngine(postgres);
