import type { AccountCatalog } from './resolve.js';

/** The three reads name resolution needs, in the client's own words. */
export interface CatalogSource {
  getPipelines(): Promise<Array<{ id: number; name: string; _embedded?: { statuses?: Array<{ id: number; name: string; sort?: number }> } }>>;
  getCustomFields(entity: 'leads' | 'contacts'): Promise<Array<{ id: number; name: string }>>;
}

/** Reads what the account has: pipelines with their statuses, and deal and contact fields. */
export async function fetchAccountCatalog(amo: CatalogSource): Promise<AccountCatalog> {
  const pipelines = await amo.getPipelines();
  const leadFields = await amo.getCustomFields('leads');
  const contactFields = await amo.getCustomFields('contacts');
  return {
    pipelines: pipelines.map((p) => ({
      id: p.id,
      name: p.name,
      statuses: (p._embedded?.statuses ?? []).map((s) => ({ id: s.id, name: s.name, sort: s.sort ?? 0 })),
    })),
    leadFields,
    contactFields,
  };
}
