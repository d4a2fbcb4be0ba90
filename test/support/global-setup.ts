import { dropTestSchemas } from './databases.js';

/** Before the run: clear the PostgreSQL schemas earlier runs left (see dropDb). */
export default async function setup(): Promise<void> {
  await dropTestSchemas();
}
