import type { Mappings } from './resolve.js';
import { CONTACT_FIELDS } from './schema.js';

/** A status as the table names it, with the account's name when they differ: `Success [Closed - won]`. */
export function stageLabel(m: Pick<Mappings, 'statuses' | 'stages'>, statusId: number): string {
  const status = m.statuses.get(statusId);
  if (!status) return `status ${statusId}`;
  const stage = m.stages.get(statusId);
  return stage && stage.name !== status.name ? `${stage.name} [${status.name}]` : status.name;
}

/** The resolved table as an operator reads it (`amobridge mappings check`). */
export function describeMappings(m: Mappings): string {
  const lines = [
    `integration stage ${m.integrationStage}`,
    `pipeline "${m.pipeline.name}" (${m.pipeline.id}); new deals in "${m.initialStatus.name}" (${m.initialStatus.id})`,
    `tag "${m.tag.name}"${m.tag.id !== undefined ? ` (${m.tag.id})` : ''}`,
    `fields: detmirUserId ${m.fields.detmirUserId}, detmirOrderId ${m.fields.detmirOrderId}, subscription status ${m.fields.subscriptionStatus}`,
    '',
    'stage                              status id  order',
  ];
  const ordered = [...m.statuses.entries()].sort((a, b) => a[1].rank - b[1].rank);
  for (const [id] of ordered) {
    const stage = m.stages.get(id);
    const effects = stage
      ? Object.entries(stage.effects)
          .map(([k, v]) => `${k} = ${v}`)
          .join(', ') || '(no change)'
      : id === m.initialStatus.id
        ? '(new deals start here)'
        : '(not in the table: ignored)';
    lines.push(`${stageLabel(m, id).padEnd(35)}${String(id).padStart(9)}  ${effects}`);
  }
  lines.push('', 'order event          the deal gets');
  for (const [event, action] of Object.entries(m.orderEvents)) {
    const move = action.moveTo ? `, moved to "${action.moveTo.name}" (${action.moveTo.statusId})` : '';
    lines.push(`${event.padEnd(21)}note "${action.note}"${move}`);
  }
  const owned = (owner: string) => CONTACT_FIELDS.filter((f) => m.contactOwnership[f] === owner).join(', ') || '(none)';
  lines.push('', `contact fields Company 1 overwrites: ${owned('company1')}`, `contact fields staff own after creation: ${owned('amocrm')}`);
  return `${lines.join('\n')}\n`;
}
