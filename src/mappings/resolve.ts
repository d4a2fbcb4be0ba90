import type { OrderStatus } from '../partner/schema.js';
import { MappingsError } from './load.js';
import { type ContactOwnership, ORDER_EVENTS, type MappingsFile, type OrderEvent, type StageEffects } from './schema.js';

/** What the account says exists, reduced to what resolution needs. */
export interface AccountCatalog {
  pipelines: Array<{ id: number; name: string; statuses: Array<{ id: number; name: string; sort: number }> }>;
  leadFields: Array<{ id: number; name: string }>;
  contactFields: Array<{ id: number; name: string }>;
}

export interface ResolvedStage {
  name: string;
  statusId: number;
  /** Position on the pipeline's path: every stage before it has a smaller rank. */
  rank: number;
  effects: StageEffects;
}

/** The reverse table's action for one order event, its stage resolved. */
export interface ResolvedOrderEventAction {
  note: string;
  moveTo?: { name: string; statusId: number; pipelineId: number };
}

/** The mappings with every name replaced by the account's id. */
export interface Mappings {
  integrationStage: 1 | 2 | 3;
  pipeline: { id: number; name: string };
  initialStatus: { id: number; name: string };
  tag: { id?: number; name: string };
  fields: { detmirUserId: number; detmirOrderId: number; subscriptionStatus: number };
  /** Every status of the pipeline by id, with its rank on the path (won/lost last). */
  statuses: Map<number, { name: string; rank: number }>;
  /** Mapped stages by status id. Unmapped statuses of the pipeline are absent. */
  stages: Map<number, ResolvedStage>;
  partner: { initialStatus: OrderStatus; transitions: Partial<Record<OrderStatus, OrderStatus[]>> };
  services: MappingsFile['services'];
  /** The reverse table: what a deal gets for each order event. */
  orderEvents: Record<OrderEvent, ResolvedOrderEventAction>;
  /** Who owns each contact field once the contact exists (nothing to resolve: no ids). */
  contactOwnership: ContactOwnership;
}

const WON = 142;
const LOST = 143;

/**
 * Resolves names to ids. All problems are collected, so one run of
 * `amobridge mappings check` shows every misspelling with the names that do exist.
 */
export function resolveMappings(file: MappingsFile, account: AccountCatalog): Mappings {
  const errors: string[] = [];
  const pipeline = account.pipelines.find((p) => p.name === file.pipeline);
  if (!pipeline) {
    errors.push(`pipeline "${file.pipeline}" does not exist; pipelines: ${list(account.pipelines.map((p) => p.name))}`);
    throw new MappingsError(`mappings do not match the amoCRM account:\n  ${errors.join('\n  ')}`);
  }

  // Won and lost close the path whatever their sort says, so a deal that is won or lost
  // counts as having passed every open stage.
  const ordered = [...pipeline.statuses].sort((a, b) => rankKey(a) - rankKey(b));
  const statuses = new Map(ordered.map((s, i) => [s.id, { name: s.name, rank: i }]));
  const statusNames = ordered.map((s) => s.name);

  const findStatus = (name: string, id?: number) => {
    const found = id !== undefined ? ordered.find((s) => s.id === id) : ordered.find((s) => s.name === name);
    if (!found) {
      errors.push(
        id !== undefined
          ? `stage "${name}" (id ${id}) does not exist in pipeline "${pipeline.name}"; stages: ${list(statusNames)}`
          : `stage "${name}" does not exist in pipeline "${pipeline.name}"; stages: ${list(statusNames)}`,
      );
    }
    return found;
  };

  const initial = findStatus(file.initialStatus);
  const stages = new Map<number, ResolvedStage>();
  for (const entry of file.stages) {
    const status = findStatus(entry.stage, entry.id);
    if (!status) continue;
    if (stages.has(status.id)) errors.push(`stage "${entry.stage}" is listed twice`);
    stages.set(status.id, {
      name: entry.stage,
      statusId: status.id,
      rank: statuses.get(status.id)!.rank,
      effects: entry.set,
    });
  }

  // A stage the reverse table moves deals to: a name of the table above (which may pin an
  // id, as Refusal does) or else any stage of the pipeline.
  const orderEvents = {} as Record<OrderEvent, ResolvedOrderEventAction>;
  for (const event of ORDER_EVENTS) {
    const { note, moveTo } = file.orderEvents[event];
    if (moveTo === undefined) {
      orderEvents[event] = { note };
      continue;
    }
    const tableEntry = file.stages.find((e) => e.stage === moveTo);
    const status = tableEntry
      ? ordered.find((s) => (tableEntry.id !== undefined ? s.id === tableEntry.id : s.name === moveTo))
      : ordered.find((s) => s.name === moveTo);
    if (!status) {
      errors.push(
        `orderEvents.${event}.moveTo: stage "${moveTo}" does not exist in pipeline "${pipeline.name}"; ` +
          `stages: ${list([...new Set([...file.stages.map((e) => e.stage), ...statusNames])])}`,
      );
      continue;
    }
    orderEvents[event] = { note, moveTo: { name: moveTo, statusId: status.id, pipelineId: pipeline.id } };
  }

  const field = (kind: 'deal' | 'contact', thing: { name: string; id?: number }) => {
    const fields = kind === 'deal' ? account.leadFields : account.contactFields;
    const found = thing.id !== undefined ? fields.find((f) => f.id === thing.id) : fields.find((f) => f.name === thing.name);
    if (!found) {
      errors.push(
        `${kind} field "${thing.name}"${thing.id !== undefined ? ` (id ${thing.id})` : ''} does not exist; ${kind} fields: ${list(fields.map((f) => f.name))}`,
      );
      return 0;
    }
    return found.id;
  };
  const fields = {
    detmirUserId: field('contact', file.contactFields.detmirUserId),
    detmirOrderId: field('deal', file.dealFields.detmirOrderId),
    subscriptionStatus: field('deal', file.dealFields.subscriptionStatus),
  };

  for (const [from, tos] of Object.entries(file.partner.transitions)) {
    for (const to of tos ?? []) {
      if (!(to in file.partner.transitions)) errors.push(`partner status "${to}" (after "${from}") has no transitions entry`);
    }
  }

  if (errors.length > 0 || !initial) {
    throw new MappingsError(`mappings do not match the amoCRM account:\n  ${errors.join('\n  ')}`);
  }
  return {
    integrationStage: file.integrationStage,
    pipeline: { id: pipeline.id, name: pipeline.name },
    initialStatus: { id: initial.id, name: initial.name },
    tag: file.tag,
    fields,
    statuses,
    stages,
    partner: file.partner,
    services: file.services,
    orderEvents,
    contactOwnership: file.contactOwnership,
  };
}

function rankKey(status: { id: number; sort: number }): number {
  if (status.id === WON) return Number.MAX_SAFE_INTEGER - 1;
  if (status.id === LOST) return Number.MAX_SAFE_INTEGER;
  return status.sort;
}

function list(names: string[]): string {
  return names.map((n) => `"${n}"`).join(', ');
}
